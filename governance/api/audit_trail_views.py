"""The audit trail for auditors: events newest first, filterable."""

from __future__ import annotations

from typing import Any

from rest_framework import viewsets

from common.models import AuditEvent
from common.pagination import SeekPagination
from governance import selectors
from governance.api.audit_trail_serializers import AuditEventSerializer
from governance.filtersets import AuditEventFilterSet


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first; seek pagination (no COUNT on a big table)."""

    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    pagination_class = SeekPagination
    lookup_field = "seq"

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        return selectors.audit_event_list(user=self.request.user)
