"""A checklist item for sensitive attributes used at prediction time.

``ApprovalPolicy.sensitive_inputs_acknowledged_by`` names the role whose sign-off
must acknowledge it; existing policies, and so the reviews that froze them,
keep requiring nothing (empty). ``SignOff.acknowledged_sensitive_inputs`` holds
what a signer acknowledged. Migration 0006 sets the requirement on the high tier.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0005_risk_tier_changes'),
    ]

    operations = [
        migrations.AddField(
            model_name='approvalpolicy',
            name='sensitive_inputs_acknowledged_by',
            field=models.CharField(blank=True, choices=[('owner', 'Model owner'), ('validator', 'Independent validator'), ('compliance', 'Compliance officer')], default='', help_text='Role whose sign-off must acknowledge that a version uses sensitive attributes as inputs at prediction time (empty: no acknowledgement needed).', max_length=20),
        ),
        migrations.AddField(
            model_name='signoff',
            name='acknowledged_sensitive_inputs',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
