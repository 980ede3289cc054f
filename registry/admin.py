from django.contrib import admin

from common.admin import ExportingReadOnlyAdmin, ReadOnlyAdmin
from registry.models import (
    Alias,
    Dataset,
    ModelVersion,
    RegisteredModel,
    RegisteredModelGroupObjectPermission,
    RegisteredModelUserObjectPermission,
    RegistrationJob,
)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ExportingReadOnlyAdmin):
    list_display = ("name", "task", "risk_tier", "owner", "team", "created_at")
    list_filter = ("task", "risk_tier")
    search_fields = ("name", "description")
    list_select_related = ("owner", "team")


@admin.register(ModelVersion)
class ModelVersionAdmin(ExportingReadOnlyAdmin):
    list_display = (
        "registered_model",
        "number",
        "status",
        "created_by",
        "requested_by",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("registered_model__name", "=artifact_sha256", "source_run_id")
    list_select_related = ("registered_model", "created_by", "requested_by")


@admin.register(Dataset)
class DatasetAdmin(ExportingReadOnlyAdmin):
    list_display = ("registered_model", "name", "version", "role", "row_count", "created_at")
    list_filter = ("role",)
    search_fields = ("name", "registered_model__name", "=sha256")
    list_select_related = ("registered_model",)


@admin.register(Alias)
class AliasAdmin(ExportingReadOnlyAdmin):
    list_display = ("registered_model", "name", "version", "protected", "updated_by", "updated_at")
    list_filter = ("protected",)
    list_select_related = ("registered_model", "version", "updated_by")


@admin.register(RegistrationJob)
class RegistrationJobAdmin(ReadOnlyAdmin):
    list_display = ("version", "status", "attempts", "queued_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("version", "version__registered_model")


@admin.register(RegisteredModelUserObjectPermission)
class UserGrantAdmin(ReadOnlyAdmin):
    """Who holds which right on which model (grants are made with `manage.py grant`)."""

    list_display = ("content_object", "user", "permission")
    list_filter = ("permission",)
    search_fields = ("user__username", "content_object__name")
    list_select_related = ("content_object", "user", "permission")


@admin.register(RegisteredModelGroupObjectPermission)
class GroupGrantAdmin(ReadOnlyAdmin):
    list_display = ("content_object", "group", "permission")
    list_filter = ("permission",)
    search_fields = ("group__name", "content_object__name")
    list_select_related = ("content_object", "group", "permission")
