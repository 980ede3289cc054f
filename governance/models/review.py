"""Approval policies, reviews, sign-offs, evidence items and notifications."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from common.errors import DomainError
from common.models import BackgroundJob, TimeStampedModel
from common.permissions import PermissionManager
from governance.models.risk_tiers import TierLoweringRole

__all__ = [
    "OPEN_REVIEW_STATES",
    "ApprovalPolicy",
    "Evidence",
    "Review",
    "ReviewState",
    "ReviewTransition",
    "SignOff",
    "SignOffDecision",
    "SignOffMeaning",
    "SignOffRole",
    "Webhook",
    "WebhookDelivery",
]


class SignOffRole(models.TextChoices):
    OWNER = "owner", "Model owner"
    VALIDATOR = "validator", "Independent validator"
    COMPLIANCE = "compliance", "Compliance officer"


class ReviewState(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


OPEN_REVIEW_STATES = frozenset({ReviewState.IN_REVIEW})


class SignOffDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


class SignOffMeaning(models.TextChoices):
    REVIEWED = "reviewed", "Reviewed"
    VALIDATED = "validated", "Validated"
    APPROVED_FOR_DEPLOYMENT = "approved_for_deployment", "Approved for deployment"


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
        return self.pk is not None and Review.objects.filter(policy_id=self.pk).exists()


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
    """One electronic signature on a review. ``valid`` turns False when evidence changes."""

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
    valid = models.BooleanField(default=True, db_index=True)
    invalidated_reason = models.TextField(blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)

    objects = PermissionManager()

    class Meta:
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


class Webhook(TimeStampedModel):
    """An outgoing webhook; ``events`` are prefixes (``governance.review.``) or ``*``."""

    permission_root = ""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str) -> bool:
        return any(p == "*" or event == p or event.startswith(p) for p in self.events)


class WebhookDelivery(BackgroundJob):
    """One event sent to one webhook: the delivery log, retried with backoff."""

    task_name = "governance.tasks.deliver_webhook"
    failure_handler = None

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    response_status = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook}"
