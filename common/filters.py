"""Shared filter helpers for FilterSets used by both the UI and the API."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet


def filter_tag(queryset: QuerySet, name: str, value: Any) -> QuerySet:
    """Match one tag in a JSON list of tags, portably (SQLite and PostgreSQL)."""
    if not value:
        return queryset
    return queryset.filter(**{f"{name}__icontains": f'"{value}"'})
