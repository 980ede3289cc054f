"""Request parsers with size and nesting caps, and the one JSON decoder for request input.

Every JSON document a caller sends (a JSON body, the ``metadata`` form field of
a version registration) is decoded by ``json_loads``: strict (no ``NaN`` or
``Infinity``) and at most ``MAX_JSON_DEPTH`` arrays/objects deep. Python's
decoder recurses once per level, so ``[[[[...]]]]`` a few thousand levels deep
would otherwise raise ``RecursionError`` (a 500) before any view code runs,
and a document just under the interpreter's limit would break the first
recursive walk that meets it later (a serializer, the audit trail's JSON).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from common.errors import DomainError


class JSONTooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"it is nested deeper than {limit} levels of arrays and objects")
        self.limit = limit


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests more than ``limit`` lists/dicts (iterative: no recursion)."""
    if not isinstance(value, list | dict):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, list | dict):
                stack.append((child, depth + 1))
    return False


def json_loads(text: str, *, max_depth: int | None = None) -> Any:
    """Decode request JSON; ``ValueError`` (``JSONTooDeep`` for nesting) when refused."""
    limit = settings.MAX_JSON_DEPTH if max_depth is None else max_depth
    # Nesting can be no deeper than the number of opening brackets: the common
    # case (a flat object, a few columns) skips the depth walk entirely.
    opening = text.count("[") + text.count("{")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONTooDeep(limit) from None
    if opening > limit and _deeper_than(value, limit):
        raise JSONTooDeep(limit)
    return value


def too_deep(exc: JSONTooDeep, what: str = "The JSON body") -> DomainError:
    return DomainError(
        "json_too_deep",
        f"{what} is nested deeper than {exc.limit} levels of arrays and objects.",
        details={"max_depth": exc.limit},
        status=400,
    )


class LimitedJSONParser(parsers.JSONParser):
    """The API's JSON parser: refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE
    before reading them, and decodes through ``json_loads``."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        request = parser_context.get("request")
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise DomainError(
                "payload_too_large",
                "The JSON body is larger than the limit.",
                details={"limit_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
                status=413,
            )
        encoding = parsers.get_encoding(parser_context)  # type: ignore[attr-defined]
        raw = stream.read() if stream is not None else b""
        try:
            return json_loads(raw.decode(encoding))
        except JSONTooDeep as exc:
            raise too_deep(exc) from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
            raise ParseError(f"JSON parse error - {exc}") from None
