"""MitigationRun is gone: a failed audit's mitigation is a retraining run (lifecycle's
``RetrainingRun``, strategy ``fairness_mitigation``). Its rows were carried over by
``lifecycle.0005_mitigation_runs_into_retraining_runs``, which runs first."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0008_fairness_audit_requested_by_optional"),
        ("lifecycle", "0005_mitigation_runs_into_retraining_runs"),
    ]

    operations = [
        migrations.DeleteModel(
            name="MitigationRun",
        ),
    ]
