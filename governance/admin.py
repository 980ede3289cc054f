from django.contrib import admin

from common.admin import ReadOnlyAdmin
from governance.models import FairnessAudit, ModelCard


@admin.register(FairnessAudit)
class FairnessAuditAdmin(ReadOnlyAdmin):
    list_display = ("version", "status", "passed", "dataset", "requested_by", "finished_at")
    list_filter = ("status", "passed")
    search_fields = ("version__registered_model__name", "=sha256")
    list_select_related = ("version", "version__registered_model", "dataset", "requested_by")


@admin.register(ModelCard)
class ModelCardAdmin(ReadOnlyAdmin):
    list_display = ("version", "updated_by", "updated_at", "sha256")
    search_fields = ("version__registered_model__name",)
    list_select_related = ("version", "version__registered_model", "updated_by")


# --- review workflow: read-only for auditors, with exports ------------------------


from typing import Any  # noqa: E402

from django import forms  # noqa: E402
from django.http import HttpRequest  # noqa: E402

from common.admin import ExportingReadOnlyAdmin  # noqa: E402
from governance import policies  # noqa: E402
from governance.choices import SignOffRole  # noqa: E402
from governance.models import (  # noqa: E402
    ApprovalPolicy,
    Evidence,
    Review,
    ReviewTransition,
    SignOff,
    Webhook,
    WebhookDelivery,
)


class ApprovalPolicyForm(forms.ModelForm):
    def clean_required_roles(self) -> Any:
        # The services refuse unknown roles too; here it is a form error, not a 500.
        roles = self.cleaned_data["required_roles"]
        if (
            not isinstance(roles, list)
            or not roles
            or any(r not in SignOffRole.values for r in roles)
        ):
            raise forms.ValidationError(
                f"Give a list of sign-off roles among {', '.join(SignOffRole.values)}."
            )
        return roles

    def clean(self) -> Any:
        data = super().clean()
        role = data.get("sensitive_inputs_acknowledged_by")
        if role and role not in (data.get("required_roles") or []):
            self.add_error(
                "sensitive_inputs_acknowledged_by",
                "Name a role the policy requires (or none).",
            )
        override = data.get("evidence_override_by")
        if override and override not in (data.get("required_roles") or []):
            self.add_error("evidence_override_by", "Name a role the policy requires (or none).")
        return data


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ExportingReadOnlyAdmin):
    """Superusers add new versions, or correct one no review used; both through services."""

    form = ApprovalPolicyForm

    list_display = ("risk_tier", "version", "required_roles", "required_evidence", "validity_days")
    list_filter = ("risk_tier",)
    fields = (
        "risk_tier",
        "required_roles",
        "required_evidence",
        "thresholds",
        "validity_days",
        "independent_validator",
        "tier_lowering_role",
        "sensitive_inputs_acknowledged_by",
        "evidence_override_by",
        "description",
    )

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> tuple[str, ...]:
        # A version is numbered within its tier: moving it to another tier is a new policy.
        return ("risk_tier",) if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser and (obj is None or not obj.is_used())  # type: ignore[attr-defined]

    def save_model(
        self, request: HttpRequest, obj: ApprovalPolicy, form: object, change: bool
    ) -> None:
        if change:
            # Only an unused policy gets here (has_change_permission); the service
            # checks it again under the row lock and records the edit in the trail.
            policies.policy_update(
                actor=request.user,
                policy=obj,
                **{name: getattr(obj, name) for name in policies.EDITABLE_FIELDS},
            )
            return
        created = policies.policy_create(
            actor=request.user,
            risk_tier=obj.risk_tier,
            required_roles=obj.required_roles,
            required_evidence=obj.required_evidence,
            thresholds=obj.thresholds,
            validity_days=obj.validity_days,
            independent_validator=obj.independent_validator,
            tier_lowering_role=obj.tier_lowering_role,
            sensitive_inputs_acknowledged_by=obj.sensitive_inputs_acknowledged_by,
            evidence_override_by=obj.evidence_override_by,
            description=obj.description,
        )
        obj.pk, obj.version = created.pk, created.version


@admin.register(Review)
class ReviewAdmin(ExportingReadOnlyAdmin):
    list_display = ("version", "state", "policy", "submitted_at", "decided_at", "approved_until")
    list_filter = ("state", "policy__risk_tier")
    search_fields = ("version__registered_model__name",)
    list_select_related = ("version", "version__registered_model", "policy")


@admin.register(ReviewTransition)
class ReviewTransitionAdmin(ExportingReadOnlyAdmin):
    list_display = ("review", "from_state", "to_state", "actor", "occurred_at")
    list_filter = ("to_state",)
    search_fields = ("=actor", "review__version__registered_model__name")
    list_select_related = ("review__version__registered_model",)


@admin.register(SignOff)
class SignOffAdmin(ExportingReadOnlyAdmin):
    list_display = ("review", "signer", "role", "decision", "meaning", "signed_at", "valid")
    list_filter = ("role", "decision", "valid")
    search_fields = ("signer__username", "review__version__registered_model__name")
    list_select_related = ("review__version__registered_model", "signer")


@admin.register(Evidence)
class EvidenceAdmin(ExportingReadOnlyAdmin):
    list_display = ("version", "kind", "passed", "sha256", "produced_at")
    list_filter = ("kind", "passed")
    search_fields = ("version__registered_model__name", "=sha256")
    list_select_related = ("version__registered_model",)


@admin.register(Webhook)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ("name", "url", "events", "active")
    exclude = ("secret",)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ExportingReadOnlyAdmin):
    list_display = ("webhook", "event", "status", "attempts", "response_status", "queued_at")
    list_filter = ("status", "event")
    list_select_related = ("webhook",)
