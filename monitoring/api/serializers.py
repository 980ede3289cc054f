from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from monitoring.choices import CheckKind, DriftMethod, MetricTolerance, PerformanceBaseline
from monitoring.models import Alert, CheckRun, LabelBatch, Monitor, PredictionBatch


class BatchUploadSerializer(serializers.Serializer):
    """Either a JSON body ``{"batch_id", "columns": {name: [values]}}`` or a
    multipart form with ``batch_id`` and ``file`` (CSV or Parquet)."""

    batch_id = serializers.CharField(max_length=100)
    columns = serializers.DictField(child=serializers.ListField(), required=False)
    file = serializers.FileField(required=False)


class PredictionBatchSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = PredictionBatch
        fields = ["batch_id", "version", "row_count", "first_at", "last_at", "sha256", "created_at"]


class LabelBatchSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelBatch
        fields = ["batch_id", "row_count", "sha256", "created_at"]


class MonitorSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    version = serializers.IntegerField(
        source="version.number",
        read_only=True,
        help_text="The version watched now (the alias's, for a monitor that follows one).",
    )

    class Meta:
        model = Monitor
        fields = [
            "id",
            "model",
            "version",
            "alias",
            "name",
            "checks",
            "window_hours",
            "window_rows",
            "drift_method",
            "schedule_minutes",
            "min_rows",
            "thresholds",
            "baseline",
            "baseline_days",
            "metric_tolerance",
            "tests",
            "weights",
            "notify",
            "request_retraining",
            "enabled",
            "next_run_at",
            "created_at",
        ]


class MonitorCreateSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    version = serializers.CharField(
        required=False,
        help_text="Version number or alias (e.g. champion), resolved once: the monitor stays "
        "on that version. Leave it out with `alias`.",
    )
    alias = serializers.SlugField(
        max_length=64,
        required=False,
        default="",
        allow_blank=True,
        help_text="Follow this alias (e.g. production): each check judges the version it "
        "points at when the check runs.",
    )
    checks = serializers.ListField(
        child=serializers.ChoiceField(choices=CheckKind.choices), required=False
    )
    window_hours = serializers.IntegerField(min_value=1, max_value=24 * 365, default=24)
    window_rows = serializers.IntegerField(
        min_value=1,
        max_value=1_000_000_000,
        required=False,
        allow_null=True,
        default=None,
        help_text="Judge the newest batches holding at least this many rows instead of "
        "the last window_hours.",
    )
    drift_method = serializers.ChoiceField(
        choices=DriftMethod.choices,
        default=DriftMethod.AUTO,
        help_text="rows: exact KS on the window's raw rows; summary: PSI/JS/chi-square on the "
        "per-batch summaries (constant cost); auto: rows up to MONITOR_ROWS_METHOD_MAX_ROWS.",
    )
    schedule_minutes = serializers.IntegerField(min_value=1, max_value=60 * 24 * 31, default=60)
    min_rows = serializers.IntegerField(min_value=1, default=100)
    thresholds = serializers.DictField(child=serializers.FloatField(), required=False)
    baseline = serializers.ChoiceField(
        choices=PerformanceBaseline.choices,
        default=PerformanceBaseline.REFERENCE,
        help_text="What performance is compared with: reference (the version's first "
        "baseline_days days in production), trailing (the baseline_days days before the "
        "window) or holdout (the metrics recorded at registration).",
    )
    baseline_days = serializers.IntegerField(min_value=1, max_value=366, default=7)
    metric_tolerance = serializers.ChoiceField(
        choices=MetricTolerance.choices,
        default=MetricTolerance.ABSOLUTE,
        help_text="How thresholds.metric_drop reads a drop from the baseline: absolute "
        "(0.05 = 5 points; RMSE and MAE always relative) or relative (0.05 = 5% of the "
        "baseline's value).",
    )
    tests = serializers.DictField(child=serializers.CharField(), required=False)
    weights = serializers.DictField(
        child=serializers.FloatField(min_value=0),
        required=False,
        help_text="Feature weights for the drift share, e.g. permutation importances; "
        "features left out weigh 0. Empty: every feature counts the same.",
    )
    notify = serializers.BooleanField(default=True)
    request_retraining = serializers.BooleanField(default=False)


class MonitorUpdateSerializer(serializers.Serializer):
    """A monitor's settings to change; fields left out keep their value."""

    name = serializers.SlugField(max_length=100, required=False)
    version = serializers.CharField(
        required=False, help_text="Version number or alias (e.g. champion)."
    )
    checks = serializers.ListField(
        child=serializers.ChoiceField(choices=CheckKind.choices), required=False
    )
    window_hours = serializers.IntegerField(min_value=1, max_value=24 * 365, required=False)
    window_rows = serializers.IntegerField(
        min_value=1, max_value=1_000_000_000, required=False, allow_null=True
    )
    drift_method = serializers.ChoiceField(choices=DriftMethod.choices, required=False)
    schedule_minutes = serializers.IntegerField(min_value=1, max_value=60 * 24 * 31, required=False)
    min_rows = serializers.IntegerField(min_value=1, required=False)
    thresholds = serializers.DictField(child=serializers.FloatField(), required=False)
    alias = serializers.SlugField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="Follow this alias (empty: stay on the version).",
    )
    baseline = serializers.ChoiceField(choices=PerformanceBaseline.choices, required=False)
    baseline_days = serializers.IntegerField(min_value=1, max_value=366, required=False)
    metric_tolerance = serializers.ChoiceField(choices=MetricTolerance.choices, required=False)
    tests = serializers.DictField(child=serializers.CharField(), required=False)
    weights = serializers.DictField(child=serializers.FloatField(min_value=0), required=False)
    notify = serializers.BooleanField(required=False)
    request_retraining = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)


class CheckRunSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(
        source="version.number",
        read_only=True,
        default=None,
        help_text="The version this check judged (null until it ran).",
    )

    class Meta:
        model = CheckRun
        fields = [
            "id",
            "status",
            "version",
            "trigger",
            "window_start",
            "window_end",
            "row_count",
            "labelled_count",
            "drift_share",
            "drift",
            "output_drift",
            "metrics",
            "breaches",
            "attempts",
            "queued_at",
            "started_at",
            "finished_at",
            "error",
        ]


class AlertSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name", read_only=True)
    # None for a rollback alert (opened by the rollout controller, not by a monitor).
    monitor = serializers.CharField(source="monitor.name", read_only=True, default=None)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", default=None)

    class Meta:
        model = Alert
        fields = [
            "id",
            "model",
            "monitor",
            "kind",
            "status",
            "message",
            "details",
            "occurrences",
            "opened_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "resolution",
        ]


class AlertResolveSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ABQuerySerializer(serializers.Serializer):
    a = serializers.CharField(help_text="Version number or alias of arm A (the incumbent).")
    b = serializers.CharField(help_text="Version number or alias of arm B (the challenger).")
    metric = serializers.CharField(default="accuracy")
    alpha = serializers.FloatField(default=0.05)
    since = serializers.DateTimeField(required=False)


class ABResultSerializer(serializers.Serializer):
    metric = serializers.CharField()
    version_a = serializers.IntegerField()
    version_b = serializers.IntegerField()
    n_a = serializers.IntegerField()
    n_b = serializers.IntegerField()
    value_a = serializers.FloatField(allow_null=True)
    value_b = serializers.FloatField(allow_null=True)
    test = serializers.CharField(allow_null=True)
    difference = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    alpha = serializers.FloatField()
    significant = serializers.BooleanField()
    winner = serializers.CharField(allow_null=True)
    verdict = serializers.CharField()

    def to_representation(self, instance: Any) -> Any:
        return {k: instance.get(k) for k in self.fields}


class DataPolicySerializer(serializers.Serializer):
    """A model's data policy (``monitoring.data_policy.DataPolicyView``)."""

    model = serializers.CharField(source="model.name", read_only=True)
    retention_days = serializers.IntegerField(
        allow_null=True, help_text="Days a batch is kept; null: MONITORING_RETENTION_DAYS."
    )
    effective_retention_days = serializers.IntegerField(read_only=True)
    dropped_columns = serializers.ListField(child=serializers.CharField())
    hashed_columns = serializers.ListField(child=serializers.CharField())
    hash_key_configured = serializers.SerializerMethodField()
    updated_by = serializers.CharField(
        source="updated_by.username", read_only=True, allow_null=True
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_hash_key_configured(self, obj: Any) -> bool:
        return bool(settings.MONITORING_HASH_KEY)


class DataPolicyUpdateSerializer(serializers.Serializer):
    """The whole policy (PUT): every field is required, ``retention_days`` may be null."""

    retention_days = serializers.IntegerField(allow_null=True, min_value=1)
    dropped_columns = serializers.ListField(child=serializers.CharField(max_length=200))
    hashed_columns = serializers.ListField(child=serializers.CharField(max_length=200))
