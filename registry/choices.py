from django.db import models


class Task(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    REGRESSION = "regression", "Regression"


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class VersionStatus(models.TextChoices):
    PENDING = "pending", "Pending validation"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class DatasetRole(models.TextChoices):
    TRAINING = "training", "Training"
    EVALUATION = "evaluation", "Evaluation"
    REFERENCE = "reference", "Reference"


# Registration is a one-way street: pending ends in ready or failed, for good.
VERSION_TRANSITIONS: dict[str, frozenset[str]] = {
    VersionStatus.PENDING: frozenset({VersionStatus.READY, VersionStatus.FAILED}),
    VersionStatus.READY: frozenset(),
    VersionStatus.FAILED: frozenset(),
}
