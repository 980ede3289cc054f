"""Reviews and their history, sign-offs and evidence items."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from common.models import TimeStampedModel
from common.permissions import PermissionManager
from governance.choices import ReviewState, SignOffDecision, SignOffMeaning, SignOffRole
from governance.models.policies import ApprovalPolicy

__all__ = ["Evidence", "Review", "ReviewTransition", "SignOff"]


class Review(TimeStampedModel):
    """The approval request of one version. ``state`` has one writer: governance.reviews."""

    permission_root = "version__registered_model"

    version = models.OneToOneField(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="review"
    )
    state = models.CharField(
        max_length=20, choices=ReviewState.choices, default=ReviewState.DRAFT, db_index=True
    )
    policy = models.ForeignKey(
        ApprovalPolicy, on_delete=models.PROTECT, null=True, blank=True, related_name="reviews"
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    approved_until = models.DateTimeField(null=True, blank=True)
    # Set once by the beat sweep (governance.reviews.approval_expiry_sweep); cleared
    # when the version is approved again.
    expiry_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    expired_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = PermissionManager()

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"review of {self.version}"

    def is_expired(self, now: object = None) -> bool:
        moment = now or timezone.now()
        return self.approved_until is not None and self.approved_until <= moment  # type: ignore[operator]


class ReviewTransition(models.Model):
    """Append-only history: one row per state change."""

    permission_root = "review__version__registered_model"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=20, choices=ReviewState.choices)
    to_state = models.CharField(max_length=20, choices=ReviewState.choices)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    objects = PermissionManager()

    class Meta:
        ordering = ["occurred_at", "pk"]

    def __str__(self) -> str:
        return f"{self.review}: {self.from_state} → {self.to_state}"


class SignOff(models.Model):
    """One electronic signature on a review. ``valid`` turns False, once, when the
    version is resubmitted or evidence it signed changes (one writer:
    ``governance.reviews._signoff_invalidate``)."""

    permission_root = "review__version__registered_model"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="signoffs")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20, choices=SignOffRole.choices)
    decision = models.CharField(max_length=20, choices=SignOffDecision.choices)
    meaning = models.CharField(max_length=30, choices=SignOffMeaning.choices)
    comment = models.TextField(blank=True)
    signed_at = models.DateTimeField(default=timezone.now)
    # {kind: sha256} of every evidence item in force when signed.
    evidence_sha256 = models.JSONField(default=dict)
    # The sensitive attributes the version used at prediction time that the signer
    # acknowledged when signing (``ApprovalPolicy.sensitive_inputs_acknowledged_by``).
    acknowledged_sensitive_inputs = models.JSONField(default=list, blank=True)
    # An approval that overrode required evidence which had failed or was missing
    # (``ApprovalPolicy.evidence_override_by``): each item as the checklist showed it
    # ({"requirement", "status", "why"}) and the signer's written justification.
    overridden_requirements = models.JSONField(default=list, blank=True)
    override_justification = models.TextField(blank=True)
    valid = models.BooleanField(default=True, db_index=True)
    invalidated_reason = models.TextField(blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)

    objects = PermissionManager()

    class Meta:
        verbose_name = "sign-off"
        verbose_name_plural = "sign-offs"
        ordering = ["signed_at", "pk"]
        constraints = [
            # One live signature per role: a second one for a filled role is refused.
            models.UniqueConstraint(
                fields=["review", "role"],
                condition=models.Q(valid=True),
                name="signoff_one_valid_per_role",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.decision} by {self.signer} on {self.review}"


class Evidence(models.Model):
    """One evidence item filed for a version; the latest of each kind counts."""

    permission_root = "version__registered_model"

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="evidence"
    )
    kind = models.CharField(max_length=30)
    sha256 = models.CharField(max_length=64)
    passed = models.BooleanField(null=True)
    summary = models.TextField(blank=True)
    source = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)
    produced_at = models.DateTimeField(default=timezone.now)

    objects = PermissionManager()

    class Meta:
        ordering = ["-produced_at", "-pk"]
        verbose_name_plural = "evidence"
        indexes = [models.Index(fields=["version", "kind", "-produced_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.version}"
