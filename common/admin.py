"""Admin for auditors: read-only everywhere, cheap on big append-only tables."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.utils.functional import cached_property

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


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
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
