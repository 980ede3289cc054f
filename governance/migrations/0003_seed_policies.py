"""Default approval policies, version 1 of each risk tier.

``DEFAULTS`` is this migration's frozen copy of ``governance.policies.DEFAULT_POLICIES``
as it was when the migration was written; it never changes with the code.

Later versions are added by administrators (``policies.policy_create`` or the
admin); a policy a review used is never edited.
"""

from django.db import migrations

DEFAULTS = {
    "low": {
        "required_roles": ["owner"],
        "required_evidence": ["evaluation_report"],
        "thresholds": {"fairness_audit": {"min_group_size": 30}},
        "validity_days": 365,
        "independent_validator": False,
        "description": "Low risk: the owner signs after an evaluation report.",
    },
    "medium": {
        "required_roles": ["owner", "validator"],
        "required_evidence": ["evaluation_report", "model_card"],
        "thresholds": {
            "evaluation_report:classification": {"roc_auc": {"min": 0.6}},
            "fairness_audit": {"min_group_size": 30},
        },
        "validity_days": 180,
        "independent_validator": False,
        "description": "Medium risk: owner and validator; evaluation and a complete model card.",
    },
    "high": {
        "required_roles": ["owner", "validator", "compliance"],
        "required_evidence": ["evaluation_report", "fairness_audit", "model_card"],
        "thresholds": {
            "evaluation_report:classification": {"roc_auc": {"min": 0.6}},
            "fairness_audit": {
                "min_group_size": 30,
                "demographic_parity_ratio_min": 0.8,
            },
        },
        "validity_days": 90,
        "independent_validator": True,
        "description": (
            "High risk: owner, a validator from outside the owning team and a compliance "
            "officer; evaluation, a passed fairness audit and a complete model card."
        ),
    },
}


def seed(apps, schema_editor):
    Policy = apps.get_model("governance", "ApprovalPolicy")
    for tier, fields in DEFAULTS.items():
        Policy.objects.get_or_create(risk_tier=tier, version=1, defaults=fields)


def unseed(apps, schema_editor):
    apps.get_model("governance", "ApprovalPolicy").objects.filter(
        version=1, reviews__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("governance", "0002_review_workflow")]
    operations = [migrations.RunPython(seed, unseed)]
