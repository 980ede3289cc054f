from django.contrib import admin

from common.admin import ReadOnlyAdmin
from governance.models import FairnessAudit, MitigationRun, ModelCard


@admin.register(FairnessAudit)
class FairnessAuditAdmin(ReadOnlyAdmin):
    list_display = ("version", "status", "passed", "dataset", "requested_by", "finished_at")
    list_filter = ("status", "passed")
    search_fields = ("version__registered_model__name", "=sha256")
    list_select_related = ("version", "version__registered_model", "dataset", "requested_by")


@admin.register(MitigationRun)
class MitigationRunAdmin(ReadOnlyAdmin):
    list_display = ("version", "method", "constraint", "status", "candidate", "follow_up")
    list_filter = ("status", "method")
    list_select_related = ("version", "version__registered_model", "candidate", "follow_up")


@admin.register(ModelCard)
class ModelCardAdmin(ReadOnlyAdmin):
    list_display = ("version", "updated_by", "updated_at", "sha256")
    search_fields = ("version__registered_model__name",)
    list_select_related = ("version", "version__registered_model", "updated_by")


# --- review workflow: read-only for auditors, with exports ------------------------


from django.http import HttpRequest  # noqa: E402

from common.admin import ExportingReadOnlyAdmin  # noqa: E402
from governance import reviews  # noqa: E402
from governance.models import (  # noqa: E402
    ApprovalPolicy,
    Evidence,
    Review,
    ReviewTransition,
    SignOff,
    Webhook,
    WebhookDelivery,
)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ExportingReadOnlyAdmin):
    """Superusers add new versions; a used policy is never editable."""

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
        "description",
    )

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser and (obj is None or not obj.is_used())  # type: ignore[attr-defined]

    def save_model(
        self, request: HttpRequest, obj: ApprovalPolicy, form: object, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)  # refused by the model once used
            return
        created = reviews.policy_create(
            actor=request.user,
            risk_tier=obj.risk_tier,
            required_roles=obj.required_roles,
            required_evidence=obj.required_evidence,
            thresholds=obj.thresholds,
            validity_days=obj.validity_days,
            independent_validator=obj.independent_validator,
            tier_lowering_role=obj.tier_lowering_role,
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
