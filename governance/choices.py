"""Governance enumerations and the named groups the code branches on."""

from django.db import models


class SignOffRole(models.TextChoices):
    OWNER = "owner", "Model owner"
    VALIDATOR = "validator", "Independent validator"
    COMPLIANCE = "compliance", "Compliance officer"


# The owner's sign-off attests to the model as its owner; every other role is an
# independent check, which the author of a version may not take
# (``governance.selectors.signing_refusal``). A role added later is independent.
ATTESTING_ROLES = frozenset({SignOffRole.OWNER})


class ReviewState(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


OPEN_REVIEW_STATES = frozenset({ReviewState.IN_REVIEW})
# The one table of allowed review transitions (governance.reviews._transition).
REVIEW_TRANSITIONS: dict[str, frozenset[str]] = {
    ReviewState.DRAFT: frozenset({ReviewState.IN_REVIEW}),
    ReviewState.IN_REVIEW: frozenset(
        {ReviewState.APPROVED, ReviewState.REJECTED, ReviewState.CHANGES_REQUESTED}
    ),
    ReviewState.CHANGES_REQUESTED: frozenset({ReviewState.DRAFT}),
    # Evidence changed after approval: back to review, the affected sign-offs void.
    ReviewState.APPROVED: frozenset({ReviewState.IN_REVIEW}),
    ReviewState.REJECTED: frozenset(),
}
# A decision was taken (``Review.decided_at`` is set).
DECIDED_REVIEW_STATES = frozenset({ReviewState.APPROVED, ReviewState.REJECTED})


class SignOffDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"
    REQUEST_CHANGES = "request_changes", "Request changes"


class SignOffMeaning(models.TextChoices):
    REVIEWED = "reviewed", "Reviewed"
    VALIDATED = "validated", "Validated"
    APPROVED_FOR_DEPLOYMENT = "approved_for_deployment", "Approved for deployment"


class MitigationMethod(models.TextChoices):
    THRESHOLD_OPTIMIZER = "threshold_optimizer", "ThresholdOptimizer (post-processing)"
    EXPONENTIATED_GRADIENT = "exponentiated_gradient", "ExponentiatedGradient (reduction)"


class Constraint(models.TextChoices):
    DEMOGRAPHIC_PARITY = "demographic_parity", "demographic parity"
    EQUALIZED_ODDS = "equalized_odds", "equalized odds"


class TierLoweringRole(models.TextChoices):
    """Who may approve lowering a model's tier (named by the tier's policy)."""

    COMPLIANCE = "compliance", "Compliance officer"
    RISK = "risk", "Risk officer"


class RiskTierChangeState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
