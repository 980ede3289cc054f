"""Risk-tier changes that need a second person: lowering a model's tier.

A model's risk tier picks the approval policy its next review is frozen under,
so lowering it chooses a weaker gate. The owner (``manage``) may only *request*
it; a person holding the role that the current tier's policy names
(``ApprovalPolicy.tier_lowering_role``: compliance by default, or risk) decides,
with an e-signature. ``state`` has one writer: ``governance.risk_tiers``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.permissions import PermissionManager
from governance.choices import RiskTierChangeState, TierLoweringRole

__all__ = ["RiskTierChange"]


class RiskTierChange(models.Model):
    """A request to lower a model's risk tier, and its decision (append-only history)."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="risk_tier_changes"
    )
    from_tier = models.CharField(max_length=10)
    to_tier = models.CharField(max_length=10)
    reason = models.TextField()
    # Frozen at request time from the policy of ``from_tier``.
    approver_role = models.CharField(max_length=20, choices=TierLoweringRole.choices)
    state = models.CharField(
        max_length=20,
        choices=RiskTierChangeState.choices,
        default=RiskTierChangeState.PENDING,
        db_index=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_comment = models.TextField(blank=True)

    objects = PermissionManager()

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            # One open request per model: a second one waits for the first decision.
            models.UniqueConstraint(
                fields=["registered_model"],
                condition=Q(state="pending"),
                name="risk_tier_change_one_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.registered_model}: {self.from_tier} → {self.to_tier} ({self.state})"
