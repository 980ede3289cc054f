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
        # The admin only needs "is there a next page"; a bounded count answers
        # it. Filtered lists count at most COUNT_CAP rows (then show "10,000+"
        # pages' worth); unfiltered ones never count.
        if self.object_list.query.where:
            return self.object_list[: self.COUNT_CAP].count()
        return 1_000_000

    COUNT_CAP = 10_000


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


class RecentValuesFilter(admin.SimpleListFilter):
    """Choices from the newest events only: a DISTINCT over a million rows is not free.

    Any value still filters through the URL (``?action=...``).
    """

    field = ""
    RECENT = 5000

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        recent = model_admin.model.objects.order_by("-seq").values_list(self.field, flat=True)
        return [(v, v) for v in sorted(set(recent[: self.RECENT]))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class ActionFilter(RecentValuesFilter):
    title = parameter_name = field = "action"


class ObjectTypeFilter(RecentValuesFilter):
    title = "object type"
    parameter_name = field = "object_type"


@admin.register(AuditEvent)
class AuditEventAdmin(ExportingReadOnlyAdmin):
    list_display = ("seq", "occurred_at", "actor", "action", "object_type", "object_repr")
    list_filter = (ActionFilter, ObjectTypeFilter)
    search_help_text = (
        "Exact: a seq number, a 64-hex hash, an object as type:id "
        "(e.g. registry.modelversion:42) or a username."
    )
    search_fields = ("actor",)  # enables the box; matching is get_search_results
    date_hierarchy = None
    paginator = EstimatedCountPaginator
    ordering = ("-seq",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_search_results(self, request: HttpRequest, queryset: Any, term: str) -> Any:
        # Exact, case-sensitive matches on indexed columns only (``=actor`` would
        # be iexact, i.e. UPPER(actor) = ..., which no index serves).
        term = term.strip()
        if not term:
            return queryset, False
        if term.isdigit():
            return queryset.filter(seq=int(term)), False
        if len(term) == 64 and all(c in "0123456789abcdef" for c in term):
            return queryset.filter(hash=term), False
        object_type, colon, object_id = term.rpartition(":")
        if colon and "." in object_type and object_id:  # the (object_type, object_id) index
            return queryset.filter(object_type=object_type, object_id=object_id), False
        return queryset.filter(actor=term), False


@admin.register(AuditChainHead)
class AuditChainHeadAdmin(ReadOnlyAdmin):
    list_display = ("seq", "last_hash")
