"""The high-risk tier's compliance officer acknowledges sensitive attributes used at
prediction time (``ApprovalPolicy.sensitive_inputs_acknowledged_by``).

``REQUIRED`` is this migration's frozen copy of the requirement added to
``governance.policies.DEFAULT_POLICIES``. For each tier in it, the current policy
version is corrected in place when no review has used it (a fresh database:
version 1 from 0003), and otherwise followed by a new version that adds the
requirement, so a review keeps the policy it froze.
"""

from django.db import migrations

REQUIRED = {"high": "compliance"}
COPIED = (
    "required_roles",
    "required_evidence",
    "thresholds",
    "validity_days",
    "independent_validator",
    "tier_lowering_role",
    "description",
)


def require_acknowledgement(apps, schema_editor):
    Policy = apps.get_model("governance", "ApprovalPolicy")
    for tier, role in REQUIRED.items():
        current = Policy.objects.filter(risk_tier=tier).order_by("-version").first()
        if current is None or current.sensitive_inputs_acknowledged_by == role:
            continue
        if role not in current.required_roles:
            continue  # a policy without that role cannot ask it to acknowledge
        if not current.reviews.exists():
            current.sensitive_inputs_acknowledged_by = role
            current.save(update_fields=["sensitive_inputs_acknowledged_by"])
            continue
        Policy.objects.create(
            risk_tier=tier,
            version=current.version + 1,
            sensitive_inputs_acknowledged_by=role,
            **{name: getattr(current, name) for name in COPIED},
        )


class Migration(migrations.Migration):
    dependencies = [("governance", "0006_sensitive_inputs_acknowledgement")]
    operations = [migrations.RunPython(require_acknowledgement, migrations.RunPython.noop)]
