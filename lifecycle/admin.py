"""Read-only admin for auditors: retraining policies, runs and skipped triggers.

Writes go through ``lifecycle.retraining`` (the UI and the API); a policy's schedule
is also visible (and editable by an administrator) as a django-celery-beat periodic task.
"""

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from lifecycle.models import RetrainingPolicy, RetrainingRun, RetrainingSkip


@admin.register(RetrainingPolicy)
class RetrainingPolicyAdmin(ReadOnlyAdmin):
    list_display = (
        "registered_model",
        "enabled",
        "strategy",
        "schedule",
        "on_alert",
        "on_new_dataset",
        "auto_submit",
        "updated_by",
        "updated_at",
    )
    list_filter = ("enabled", "strategy", "on_alert")
    list_select_related = ("registered_model", "updated_by")


@admin.register(RetrainingRun)
class RetrainingRunAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "registered_model",
        "trigger",
        "strategy",
        "status",
        "outcome",
        "parent",
        "version",
        "queued_at",
    )
    list_filter = ("status", "outcome", "trigger", "strategy")
    search_fields = ("registered_model__name",)
    list_select_related = ("registered_model", "parent", "version")


@admin.register(RetrainingSkip)
class RetrainingSkipAdmin(ReadOnlyAdmin):
    list_display = ("registered_model", "trigger", "code", "reason", "alert", "created_at")
    list_filter = ("trigger", "code")
    list_select_related = ("registered_model", "alert")
