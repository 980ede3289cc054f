"""Monitoring rows: batches (raw rows live in Parquet blobs), profiles, monitors,
check runs (job rows), alerts and retraining signals.

Raw prediction and label rows are never stored in the database: a batch is one
row pointing at a content-addressed Parquet blob plus its ingest-time summary
(counts, moments, histogram on the reference bins), so a window's drift is a
merge of a few JSON summaries and never re-reads raw rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from common.models import BackgroundJob
from common.permissions import PermissionManager
from monitoring.choices import (
    ACTIVE_ALERT_STATUSES,
    AlertKind,
    AlertStatus,
    DriftMethod,
    MetricTolerance,
    PerformanceBaseline,
)


class ReferenceProfile(models.Model):
    """The drift baseline of a version, built once from its training dataset."""

    permission_root = "version__registered_model"

    version = models.OneToOneField(
        "registry.ModelVersion", on_delete=models.CASCADE, related_name="reference_profile"
    )
    dataset = models.ForeignKey("registry.Dataset", on_delete=models.PROTECT, related_name="+")
    storage_key = models.CharField(max_length=200, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    fingerprint = models.CharField(max_length=64, editable=False)
    row_count = models.BigIntegerField(editable=False)
    columns = models.JSONField(default=list, editable=False)
    # The model's outputs on the same rows (predictions, positive-class scores) and the
    # dataset's target, for prediction and label drift: a second profile blob.
    outputs_storage_key = models.CharField(max_length=200, blank=True, editable=False)
    outputs_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    outputs_columns = models.JSONField(default=list, blank=True, editable=False)
    outputs_note = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = PermissionManager()

    def __str__(self) -> str:
        return f"profile of {self.version}"


class ProfileBuild(BackgroundJob):
    """A worker job: build a version's drift baseline (its ``ReferenceProfile``), then
    summarize on it the prediction batches that were stored before it existed.

    Requested when the version becomes ready, and by ingestion and monitor creation
    while there is no baseline (``reference_profile_request``), so no request ever
    waits on it. At most one is queued per version at a time; building is idempotent.
    """

    permission_root = "version__registered_model"
    task_name = "monitoring.tasks.heavy_build_profile"
    failure_handler = "monitoring.services.profile_build_failed"

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.CASCADE, related_name="profile_builds"
    )

    objects = PermissionManager()

    def __str__(self) -> str:
        return f"baseline build of {self.version}"


class PredictionBatch(models.Model):
    """One posted batch of predictions for a version (rows in a Parquet blob)."""

    permission_root = "version__registered_model"

    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="prediction_batches"
    )
    batch_id = models.CharField(max_length=100)
    storage_key = models.CharField(max_length=200, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    row_count = models.BigIntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    summary = models.JSONField(default=dict)
    output_summary = models.JSONField(default=dict, blank=True)  # prediction, probability
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = PermissionManager()

    class Meta:
        verbose_name_plural = "prediction batches"
        constraints = [
            models.UniqueConstraint(fields=["version", "batch_id"], name="prediction_batch_unique")
        ]
        # Windows are "batches of this version whose rows end after T".
        indexes = [models.Index(fields=["version", "last_at"], name="predbatch_version_last")]

    def __str__(self) -> str:
        return f"{self.version} batch {self.batch_id}"


class LabelBatch(models.Model):
    """Ground truth that arrived later, joined to predictions by request id."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.PROTECT, related_name="label_batches"
    )
    batch_id = models.CharField(max_length=100)
    storage_key = models.CharField(max_length=200, editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    row_count = models.BigIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = PermissionManager()

    class Meta:
        verbose_name_plural = "label batches"
        constraints = [
            models.UniqueConstraint(
                fields=["registered_model", "batch_id"], name="label_batch_unique"
            )
        ]
        indexes = [models.Index(fields=["registered_model", "created_at"], name="labels_model_at")]

    def __str__(self) -> str:
        return f"{self.registered_model} labels {self.batch_id}"


class Monitor(models.Model):
    """A monitoring policy: what to watch, over which window, how often, how strict."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="monitors"
    )
    # The version watched now. A monitor that follows an alias (``alias``) moves to the
    # version the alias points at when a check runs (``checks.check_run_execute``).
    version = models.ForeignKey(
        "registry.ModelVersion", on_delete=models.PROTECT, related_name="monitors"
    )
    alias = models.SlugField(max_length=64, blank=True)
    name = models.SlugField(max_length=100)
    checks = models.JSONField(default=list)  # subset of CheckKind values
    window_hours = models.PositiveIntegerField(default=24)
    # When set, the window is the newest batches holding at least this many rows
    # (whole batches) instead of the last ``window_hours``.
    window_rows = models.PositiveIntegerField(null=True, blank=True)
    drift_method = models.CharField(
        max_length=10, choices=DriftMethod.choices, default=DriftMethod.AUTO
    )
    schedule_minutes = models.PositiveIntegerField(default=60)
    min_rows = models.PositiveIntegerField(default=100)
    thresholds = models.JSONField(default=dict)
    # What performance is compared with (``PerformanceBaseline``), and the length of the
    # reference or trailing window in days.
    baseline = models.CharField(
        max_length=12, choices=PerformanceBaseline.choices, default=PerformanceBaseline.REFERENCE
    )
    baseline_days = models.PositiveIntegerField(default=7)
    # How ``thresholds["metric_drop"]`` reads a drop (``MetricTolerance``).
    metric_tolerance = models.CharField(
        max_length=10, choices=MetricTolerance.choices, default=MetricTolerance.ABSOLUTE
    )
    # The reference window's metrics once it is complete, for the version and length
    # they belong to (``{"version": id, "days", "result": {...}}``): written by checks.
    baseline_cache = models.JSONField(default=dict, blank=True, editable=False)
    tests = models.JSONField(default=dict, blank=True)  # per-column test overrides
    # Feature weights for the drift share (e.g. permutation importances); empty: unweighted.
    weights = models.JSONField(default=dict, blank=True)
    notify = models.BooleanField(default=True)
    request_retraining = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = PermissionManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "name"], name="monitor_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}/{self.name}"


class CheckRun(BackgroundJob):
    """One check of one monitor over one window; at most one per (monitor, window)."""

    permission_root = "monitor__registered_model"
    task_name = "monitoring.tasks.heavy_run_check"
    failure_handler = "monitoring.checks.check_run_failed"

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="runs")
    # The version this check judged (the monitor's, or its alias's when the check ran).
    version = models.ForeignKey(
        "registry.ModelVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    trigger = models.CharField(max_length=20, default="schedule")
    row_count = models.BigIntegerField(null=True, blank=True)
    labelled_count = models.BigIntegerField(null=True, blank=True)
    drift_share = models.FloatField(null=True, blank=True)
    drift = models.JSONField(default=dict, blank=True)
    output_drift = models.JSONField(default=dict, blank=True)  # prediction and label drift
    metrics = models.JSONField(default=dict, blank=True)
    breaches = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = PermissionManager()

    class Meta(BackgroundJob.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["monitor", "window_start", "window_end"], name="check_run_one_per_window"
            )
        ]
        indexes = [models.Index(fields=["monitor", "window_end"], name="checkrun_monitor_end")]

    def __str__(self) -> str:
        return f"check {self.pk} of {self.monitor}"


class Alert(models.Model):
    """Opened by a check that crosses a threshold; at most one active per monitor and kind.

    An automatic rollback of a deployment opens one too (kind ``rollback``, no monitor,
    one per rollback: Postgres counts NULL monitors as distinct in the unique constraint).
    """

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="alerts"
    )
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts"
    )
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    status = models.CharField(
        max_length=20, choices=AlertStatus.choices, default=AlertStatus.OPEN, db_index=True
    )
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    first_run = models.ForeignKey(CheckRun, on_delete=models.SET_NULL, null=True, related_name="+")
    last_run = models.ForeignKey(CheckRun, on_delete=models.SET_NULL, null=True, related_name="+")
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution = models.TextField(blank=True)

    objects = PermissionManager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # Deduplication is enforced by the database, not only by the service.
            models.UniqueConstraint(
                fields=["monitor", "kind"],
                condition=Q(status__in=ACTIVE_ALERT_STATUSES),
                name="alert_one_active_per_monitor_kind",
            ),
            # Only a rollback alert (opened by the rollout controller) has no monitor.
            models.CheckConstraint(
                condition=Q(monitor__isnull=False) | Q(kind=AlertKind.ROLLBACK),
                name="alert_monitor_unless_rollback",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} alert on {self.registered_model.name}"


class RetrainingSignal(models.Model):
    """ "This model needs retraining": written by an alert, consumed by lifecycle."""

    permission_root = "registered_model"

    registered_model = models.ForeignKey(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="retraining_signals"
    )
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    alert = models.ForeignKey(Alert, on_delete=models.SET_NULL, null=True, related_name="+")
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    consumed_at = models.DateTimeField(null=True, blank=True)

    objects = PermissionManager()

    def __str__(self) -> str:
        return f"retrain {self.registered_model.name}: {self.reason[:40]}"


class DataPolicy(models.Model):
    """What monitoring keeps of a model's logged data, and for how long.

    ``dropped_columns`` are removed from prediction batches and ``hashed_columns``
    replaced by a keyed hash (HMAC-SHA256 with ``MONITORING_HASH_KEY``) at
    ingestion, before the batch's Parquet file or summary is stored: a change
    applies to batches posted afterwards. Batches older than ``retention_days``
    (``MONITORING_RETENTION_DAYS`` when empty) are deleted by the retention sweep
    (monitoring/retention.py). A model without a row has the defaults.
    """

    permission_root = "registered_model"

    registered_model = models.OneToOneField(
        "registry.RegisteredModel", on_delete=models.CASCADE, related_name="data_policy"
    )
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    dropped_columns = models.JSONField(default=list, blank=True)
    hashed_columns = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    objects = PermissionManager()

    class Meta:
        verbose_name_plural = "data policies"

    def __str__(self) -> str:
        return f"data policy of {self.registered_model}"
