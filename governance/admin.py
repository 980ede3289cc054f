from django.contrib import admin

from common.admin import ReadOnlyAdmin
from governance.models import FairnessAudit, MitigationRun, ModelCard


@admin.register(FairnessAudit)
class FairnessAuditAdmin(ReadOnlyAdmin):
    list_display = ("version", "status", "passed", "dataset", "requested_by", "finished_at")
    list_filter = ("status", "passed")
    search_fields = ("version__registered_model__name", "=sha256")
    list_select_related = ("version", "version__registered_model", "dataset", "requested_by")


@admin.register(MitigationRun)
class MitigationRunAdmin(ReadOnlyAdmin):
    list_display = ("version", "method", "constraint", "status", "candidate", "follow_up")
    list_filter = ("status", "method")
    list_select_related = ("version", "version__registered_model", "candidate", "follow_up")


@admin.register(ModelCard)
class ModelCardAdmin(ReadOnlyAdmin):
    list_display = ("version", "updated_by", "updated_at", "sha256")
    search_fields = ("version__registered_model__name",)
    list_select_related = ("version", "version__registered_model", "updated_by")
