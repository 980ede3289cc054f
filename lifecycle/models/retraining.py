"""Retraining: one policy per model, its runs, and the automatic triggers it skipped.

A run is a ``BackgroundJob`` (claims, the stale-job sweep, the attempt cap);
``status`` is the job's (``common.jobs``), ``outcome`` is what became of the
candidate version (one writer: ``lifecycle.retraining._outcome``, table in
``lifecycle.transitions``). A run creates at most one version: ``version`` is a
one-to-one column, set in the transaction that registers the version and marks
the job finished, so a lost attempt rolls both back.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.models import BackgroundJob, JobStatus, TimeStampedModel
from common.permissions import PermissionManager
from lifecycle import strategies

__all__ = [
    "AUTOMATIC_TRIGGERS",
    "RetrainingOutcome",
    "RetrainingPolicy",
    "RetrainingRun",
    "RetrainingSkip",
    "RetrainingStrategy",
    "RetrainingTrigger",
]


class RetrainingStrategy(models.TextChoices):
    REFIT = strategies.REFIT, "Refit"
    WARM_START = strategies.WARM_START, "Warm start"
    ONLINE = strategies.ONLINE, "Online (partial_fit)"
    AUGMENTATION = strategies.AUGMENTATION, "Augmentation"
    FAIRNESS_MITIGATION = strategies.FAIRNESS_MITIGATION, "Fairness mitigation"


class RetrainingTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    ALERT = "alert", "Monitoring alert"
    NEW_DATASET = "new_dataset", "New training dataset"
    REQUEST = "request", "Request (person or pipeline)"


# Triggers that no person pulled: they obey the cooldown and the daily budget
# without exception, and are recorded as skipped when they may not run.
AUTOMATIC_TRIGGERS = frozenset(
    {RetrainingTrigger.SCHEDULE, RetrainingTrigger.ALERT, RetrainingTrigger.NEW_DATASET}
)


class RetrainingOutcome(models.TextChoices):
    PENDING = "pending", "No version yet"
    AWAITING_VALIDATION = "awaiting_validation", "Candidate registered, awaiting validation"
    REJECTED_BY_CHAMPION = "rejected_by_champion", "Rejected by the champion"
    NOT_COMPARABLE = "not_comparable", "Not comparable with the champion"
    CANDIDATE_READY = "candidate_ready", "Candidate ready (not submitted)"
    CANDIDATE_SUBMITTED = "candidate_submitted", "Candidate in review"
    VERSION_FAILED = "version_failed", "Candidate failed validation"


class RetrainingPolicy(TimeStampedModel):
    """How and when a model retrains, set by its owner (``retraining_policy_set``)."""

    permission_root = "registered_model"

    registered_model = models.OneToOneField(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="retraining_policy"
    )
    enabled = models.BooleanField(default=True)
    strategy = models.CharField(
        max_length=30, choices=RetrainingStrategy.choices, default=RetrainingStrategy.REFIT
    )
    params = models.JSONField(default=dict, blank=True)
    # Triggers: a cron expression (a django-celery-beat PeriodicTask runs it), alerts
    # of monitors that request retraining, a new training dataset of the model.
    schedule = models.CharField(max_length=100, blank=True)
    on_alert = models.BooleanField(default=False)
    on_new_dataset = models.BooleanField(default=False)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Training data: this dataset, else the model's newest training dataset; plus the
    # labelled production rows of the last ``production_window_hours`` (0: none).
    training_dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    evaluation_dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    target_column = models.CharField(max_length=200, blank=True)
    production_window_hours = models.PositiveIntegerField(default=0)
    max_rows = models.PositiveIntegerField(null=True, blank=True)
    holdout_fraction = models.FloatField(default=0.2)
    seed = models.PositiveIntegerField(default=0)
    # Guards.
    cooldown_minutes = models.PositiveIntegerField(default=60)
    debounce_checks = models.PositiveSmallIntegerField(default=1)  # k of ...
    debounce_window = models.PositiveSmallIntegerField(default=1)  # ... the last n checks
    daily_budget = models.PositiveSmallIntegerField(default=3)
    # The result.
    auto_submit = models.BooleanField(default=True)
    primary_metric = models.CharField(max_length=30)
    tolerance = models.FloatField(default=0.01)
    sensitive_columns = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = PermissionManager()

    class Meta:
        verbose_name_plural = "retraining policies"

    def __str__(self) -> str:
        return f"retraining policy of {self.registered_model.name}"


class RetrainingRun(BackgroundJob):
    """One retraining: a parent version and data in, at most one candidate version out."""

    permission_root = "registered_model"
    task_name = "lifecycle.tasks.heavy_retrain"
    failure_handler = "lifecycle.retraining.retraining_run_gave_up"

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.PROTECT, related_name="retraining_runs"
    )
    policy = models.ForeignKey(
        RetrainingPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    trigger = models.CharField(max_length=20, choices=RetrainingTrigger.choices)
    reason = models.TextField(blank=True)
    forced = models.BooleanField(default=False)  # a person overrode the cooldown
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # What started it.
    signal = models.OneToOneField(
        "monitoring.RetrainingSignal",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retraining_run",
    )
    alert = models.ForeignKey(
        "monitoring.Alert",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retraining_runs",
    )
    trigger_dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    fairness_audit = models.ForeignKey(
        "governance.FairnessAudit",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="retraining_runs",
    )
    # How, and on what (frozen when the run is requested).
    strategy = models.CharField(max_length=30, choices=RetrainingStrategy.choices)
    params = models.JSONField(default=dict, blank=True)
    seed = models.PositiveIntegerField(default=0)
    parent = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="retraining_runs"
    )
    training_dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    evaluation_dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    target_column = models.CharField(max_length=200)
    features = models.JSONField(default=list)  # the parent's signature inputs (+ sensitive)
    production_window_hours = models.PositiveIntegerField(default=0)
    window_end = models.DateTimeField(null=True, blank=True)
    max_rows = models.PositiveIntegerField(null=True, blank=True)
    holdout_fraction = models.FloatField(default=0.2)
    primary_metric = models.CharField(max_length=30)
    tolerance = models.FloatField(default=0.01)
    auto_submit = models.BooleanField(default=True)
    sensitive_columns = models.JSONField(default=list, blank=True)
    # What the worker recorded: digests, the strategy's record, the environment,
    # the champion comparison (and the parent's figures on the same rows), timings.
    data_record = models.JSONField(default=dict, blank=True)
    training_record = models.JSONField(default=dict, blank=True)
    environment = models.JSONField(default=dict, blank=True)
    comparison = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    champion = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The datasets the run stored: its training rows (when they are not exactly a
    # registered dataset) and its hold-out (when no evaluation dataset was named).
    train_dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    holdout_dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # At most one version per run, enforced by the database (one-to-one: unique).
    version = models.OneToOneField(
        "registry.ModelVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="retraining_run",
    )
    outcome = models.CharField(
        max_length=24, choices=RetrainingOutcome.choices, default=RetrainingOutcome.PENDING
    )
    outcome_reason = models.TextField(blank=True)
    # Set once, when the ready (or failed) candidate's follow-up ran: evidence jobs
    # queued and the review submitted when the policy says so.
    followed_up_at = models.DateTimeField(null=True, blank=True)
    evaluation = models.ForeignKey(
        "lifecycle.Evaluation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    follow_up_audit = models.ForeignKey(
        "governance.FairnessAudit",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = PermissionManager()

    class Meta(BackgroundJob.Meta):
        ordering = ["-queued_at"]
        constraints = [
            # At most one active run per model, whatever the race between triggers.
            models.UniqueConstraint(
                fields=["registered_model"],
                condition=Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]),
                name="retraining_one_active_run_per_model",
            )
        ]
        indexes = [models.Index(fields=["registered_model", "queued_at"], name="retrain_model_at")]

    def __str__(self) -> str:
        return f"retraining run #{self.pk} of {self.registered_model.name}"


class RetrainingSkip(models.Model):
    """An automatic trigger that did not start a run, and why (never dropped silently)."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="retraining_skips"
    )
    trigger = models.CharField(max_length=20, choices=RetrainingTrigger.choices)
    code = models.CharField(max_length=30)
    reason = models.TextField()
    signal = models.ForeignKey(
        "monitoring.RetrainingSignal",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retraining_skips",
    )
    alert = models.ForeignKey(
        "monitoring.Alert", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dataset = models.ForeignKey(
        "registry.Dataset", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PermissionManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["registered_model", "created_at"], name="retrain_skip_at")]

    def __str__(self) -> str:
        return f"skipped {self.trigger} retraining of {self.registered_model.name}: {self.code}"
