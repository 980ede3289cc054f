from django.db import models


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


ACTIVE_ALERT_STATUSES = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

# The one table of allowed alert transitions (alert_acknowledge / alert_resolve).
ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertStatus.OPEN: frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED}),
    AlertStatus.ACKNOWLEDGED: frozenset({AlertStatus.RESOLVED}),
    AlertStatus.RESOLVED: frozenset(),
}


class AlertKind(models.TextChoices):
    DRIFT = "drift", "Data drift"
    PREDICTION_DRIFT = "prediction_drift", "Prediction drift"
    LABEL_DRIFT = "label_drift", "Label drift"
    PERFORMANCE = "performance", "Performance drop"
    # Opened by lifecycle's rollout controller (through ``alert_open_for_rollback``), not by
    # a monitor's check: the one kind whose alert has no monitor.
    ROLLBACK = "rollback", "Automatic rollback"


class CheckKind(models.TextChoices):
    DRIFT = "drift", "Data drift (features)"
    PREDICTION_DRIFT = "prediction_drift", "Prediction drift (predictions and scores)"
    LABEL_DRIFT = "label_drift", "Label drift (ground truth)"
    PERFORMANCE = "performance", "Performance"


class DriftMethod(models.TextChoices):
    """How a check reads its window for data and prediction drift.

    ``summary`` merges the per-batch summaries (PSI, Jensen-Shannon, chi-square on the
    reference bins): its cost does not depend on the window's size. ``rows`` reads the
    window's raw rows back from the batch blobs: exact KS (p-value equal to scipy's
    ``ks_2samp``) and Wasserstein for numeric columns. ``auto`` reads rows while the
    window holds at most ``MONITOR_ROWS_METHOD_MAX_ROWS`` rows, summaries above.
    """

    AUTO = "auto", "Automatic"
    ROWS = "rows", "Raw rows (exact KS)"
    SUMMARY = "summary", "Batch summaries"


class PerformanceBaseline(models.TextChoices):
    """What a performance check compares the window's metrics with.

    ``reference``: the version's own first ``baseline_days`` days of production traffic
    (its labelled rows; the reference period starts at the version's first batch), so a
    version is judged against how it did when it started serving. ``trailing``: the
    ``baseline_days`` days just before the window. ``holdout``: the metrics recorded at
    registration (the training holdout), which live traffic may never fall below.
    """

    REFERENCE = "reference", "Reference window of production"
    TRAILING = "trailing", "Trailing window"
    HOLDOUT = "holdout", "Training holdout"


class MetricTolerance(models.TextChoices):
    """How ``thresholds["metric_drop"]`` reads a drop from the baseline: ``absolute``
    (0.05 = five points of F1; RMSE and MAE are always relative) or ``relative`` (0.05 =
    5% of the baseline's value, for every metric)."""

    ABSOLUTE = "absolute", "Absolute"
    RELATIVE = "relative", "Relative to the baseline"
