"""Request parsers with size caps."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers

from common.errors import DomainError


class LimitedJSONParser(parsers.JSONParser):
    """JSON parser that refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE before reading."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise DomainError(
                "payload_too_large",
                "The JSON body is larger than the limit.",
                details={"limit_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
                status=413,
            )
        return super().parse(stream, media_type, parser_context)
