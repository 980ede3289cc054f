"""Admin for auditors: read-only everywhere, cheap on big append-only tables."""

from __future__ import annotations

import csv
import json
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.utils.functional import cached_property

from common.audit import to_plain_json
from common.models import AuditChainHead, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Writes go through services (with their checks and audit events), never the admin."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


class EstimatedCountPaginator(Paginator):
    """Skips COUNT(*) on huge tables: pages forward without knowing the total."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        # The admin only needs "is there a next page"; a bounded count answers it.
        return self.object_list[:1_000_000].count() if self.object_list.query.where else 1_000_000


def _rows(modeladmin: admin.ModelAdmin, queryset: object) -> tuple[list[str], list[list]]:
    fields = [f.name for f in modeladmin.model._meta.fields]
    rows = [
        [to_plain_json(getattr(obj, f.attname)) for f in modeladmin.model._meta.fields]
        for obj in queryset  # type: ignore[attr-defined]
    ]
    return fields, rows


@admin.action(description="Export selected to CSV")
def export_csv(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: object
) -> HttpResponse:
    fields, rows = _rows(modeladmin, queryset)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="{modeladmin.model._meta.model_name}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([json.dumps(v) if isinstance(v, dict | list) else v for v in row])
    return response


@admin.action(description="Export selected to JSON")
def export_json(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: object
) -> HttpResponse:
    fields, rows = _rows(modeladmin, queryset)
    response = HttpResponse(
        json.dumps([dict(zip(fields, row, strict=True)) for row in rows], indent=1),
        content_type="application/json",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{modeladmin.model._meta.model_name}.json"'
    )
    return response


class ExportingReadOnlyAdmin(ReadOnlyAdmin):
    """Read-only, but auditors may export what they selected."""

    actions = [export_csv, export_json]

    def get_actions(self, request: HttpRequest) -> dict:
        return admin.ModelAdmin.get_actions(self, request)


@admin.register(AuditEvent)
class AuditEventAdmin(ExportingReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "actor", "action", "object_type", "object_repr")
    list_filter = ("action", "object_type")
    search_fields = ("=actor", "=object_id", "=request_id", "=hash")
    date_hierarchy = None
    paginator = EstimatedCountPaginator
    ordering = ("-seq",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    list_display = ("seq", "last_hash")
