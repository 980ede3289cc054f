"""Read-only admin for auditors: cheap on big tables (no full counts, joins selected)."""

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from monitoring.models import (
    Alert,
    CheckRun,
    DataPolicy,
    LabelBatch,
    Monitor,
    PredictionBatch,
    ReferenceProfile,
    RetrainingSignal,
)


@admin.register(Monitor)
class MonitorAdmin(ReadOnlyAdmin):
    list_display = (
        "registered_model",
        "name",
        "alias",
        "version",
        "baseline",
        "window_hours",
        "schedule_minutes",
        "enabled",
    )
    list_select_related = ("registered_model", "version")
    list_filter = ("enabled",)
    search_fields = ("registered_model__name", "name")


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdmin):
    list_display = (
        "monitor",
        "version",
        "window_end",
        "status",
        "row_count",
        "drift_share",
        "attempts",
    )
    list_select_related = ("monitor", "monitor__registered_model", "version__registered_model")
    list_filter = ("status",)
    show_full_result_count = False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "monitor", "kind", "status", "occurrences", "opened_at")
    list_select_related = ("registered_model", "monitor")
    list_filter = ("status", "kind")
    show_full_result_count = False


@admin.register(PredictionBatch)
class PredictionBatchAdmin(ReadOnlyAdmin):
    list_display = ("version", "batch_id", "row_count", "first_at", "last_at", "created_by")
    list_select_related = ("version", "version__registered_model", "created_by")
    search_fields = ("batch_id",)
    show_full_result_count = False
    exclude = ("summary",)


@admin.register(LabelBatch)
class LabelBatchAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "batch_id", "row_count", "created_at", "created_by")
    list_select_related = ("registered_model", "created_by")
    show_full_result_count = False


@admin.register(ReferenceProfile)
class ReferenceProfileAdmin(ReadOnlyAdmin):
    list_display = ("version", "dataset", "row_count", "sha256", "created_at")
    list_select_related = ("version", "version__registered_model", "dataset")


@admin.register(RetrainingSignal)
class RetrainingSignalAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "version", "reason", "created_at", "consumed_at")
    list_select_related = ("registered_model", "version")


@admin.register(DataPolicy)
class DataPolicyAdmin(ReadOnlyAdmin):
    """Retention and column rules per model (changed through the API, audited)."""

    list_display = (
        "registered_model",
        "retention_days",
        "dropped_columns",
        "hashed_columns",
        "updated_by",
        "updated_at",
    )
    list_select_related = ("registered_model", "updated_by")
    search_fields = ("registered_model__name",)
