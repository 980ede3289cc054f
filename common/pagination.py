"""Pagination classes for the API."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class SeekPagination(CursorPagination):
    """For big append-only tables: no COUNT(*), stable under concurrent inserts."""

    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-pk"
