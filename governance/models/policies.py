"""Approval policies: what each risk tier demands, versioned; a used policy is frozen."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from common.errors import DomainError
from governance.choices import SignOffRole, TierLoweringRole

__all__ = ["ApprovalPolicy"]


class ApprovalPolicy(models.Model):
    """What a risk tier demands, versioned. A policy used by a review is frozen.

    ``thresholds`` holds, per evidence kind, what judges that evidence:
    ``{"evaluation_report": {"roc_auc": {"min": 0.7}}, "fairness_audit": {...}}``.
    """

    permission_root = ""

    risk_tier = models.CharField(max_length=10)
    version = models.PositiveIntegerField()
    required_roles = models.JSONField(default=list)
    required_evidence = models.JSONField(default=list)
    thresholds = models.JSONField(default=dict, blank=True)
    validity_days = models.PositiveIntegerField(default=180)
    independent_validator = models.BooleanField(
        default=False, help_text="The validator must not be on the model's owning team."
    )
    tier_lowering_role = models.CharField(
        max_length=20,
        choices=TierLoweringRole.choices,
        default=TierLoweringRole.COMPLIANCE,
        help_text="Who approves lowering a model's risk tier from this tier.",
    )
    # A checklist item: a version that uses sensitive attributes at prediction time
    # needs this role's sign-off to acknowledge it. Empty: not required.
    sensitive_inputs_acknowledged_by = models.CharField(
        max_length=20,
        blank=True,
        default="",
        choices=SignOffRole.choices,
        help_text=(
            "Role whose sign-off must acknowledge that a version uses sensitive attributes "
            "as inputs at prediction time (empty: no acknowledgement needed)."
        ),
    )
    # Who may sign "Approved for deployment" although required evidence failed or is
    # missing, with a written justification (an exception). Empty: nobody may.
    evidence_override_by = models.CharField(
        max_length=20,
        blank=True,
        default="",
        choices=SignOffRole.choices,
        help_text=(
            "Role that may sign 'Approved for deployment' although required evidence failed "
            "or is missing, by overriding it with a written justification (empty: no override)."
        ),
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["risk_tier", "-version"]
        verbose_name_plural = "approval policies"
        constraints = [
            models.UniqueConstraint(fields=["risk_tier", "version"], name="policy_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.risk_tier} policy v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A review judged by this policy must stay judged by what it froze.
        if self.is_used():
            raise DomainError(
                "policy_in_use",
                f"{self} is used by a review; add a new version instead of editing it.",
                details={"policy": self.pk},
                status=409,
            )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_used():
            raise DomainError("policy_in_use", f"{self} is used by a review.", status=409)
        return super().delete(*args, **kwargs)

    @property
    def validity(self) -> timedelta:
        return timedelta(days=self.validity_days)

    def is_used(self) -> bool:
        return self.pk is not None and self.reviews.exists()
