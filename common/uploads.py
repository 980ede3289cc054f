"""Streaming upload limits.

Files are written to a temporary file chunk by chunk (never held in memory)
and the request is refused as soon as it announces, or has sent, more than
``MAX_UPLOAD_BYTES``. A client that lies about Content-Length is cut off by the
running count.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from common.errors import DomainError


def too_large(limit: int) -> DomainError:
    return DomainError(
        "payload_too_large",
        f"The upload is larger than the limit of {limit // (1024 * 1024)} MiB.",
        details={"limit_bytes": limit},
        status=413,
    )


class LimitedUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.limit = settings.MAX_UPLOAD_BYTES
        self.received = 0

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        if content_length and content_length > self.limit + 64 * 1024:
            raise too_large(self.limit)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            raise too_large(self.limit)
        return super().receive_data_chunk(raw_data, start)
