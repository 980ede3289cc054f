"""A version's author and who requested it, kept apart.

``created_by`` (the author) becomes nullable: a version produced by a ModelGate
job (a fairness mitigation, a retraining run) has no human author. The person
who asked for that job is the new ``requested_by``. Existing rows keep their
``created_by`` and get no ``requested_by``.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0003_serve_right'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='requested_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='modelversion',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='registered_versions', to=settings.AUTH_USER_MODEL),
        ),
    ]
