"""Streaming upload limits, and the sweep of spooled uploads left by killed processes.

Files are written to a temporary file chunk by chunk (never held in memory)
and the request is refused as soon as it announces, or has sent, more than
``MAX_UPLOAD_BYTES``. A client that lies about Content-Length is cut off by the
running count.

The temporary files live in ``FILE_UPLOAD_TEMP_DIR``; Django deletes each when
its request ends, but a process killed mid-request (OOM killer, a deploy, a
worker timeout) leaves its file behind. ``upload_tmp_sweep`` deletes those:
each web process runs it when it starts (config/wsgi.py) and beat runs it
periodically. Several processes share the folder, so only files untouched for
longer than any request may last (``UPLOAD_TMP_MAX_AGE_SECONDS``) are taken
for orphans: a live upload writes to its file as the body arrives.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from common.errors import DomainError

logger = logging.getLogger(__name__)


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


def upload_tmp_sweep(*, max_age_seconds: int | None = None) -> int:
    """Delete spooled uploads older than the longest request; returns how many."""
    folder = settings.FILE_UPLOAD_TEMP_DIR
    max_age = settings.UPLOAD_TMP_MAX_AGE_SECONDS if max_age_seconds is None else max_age_seconds
    cutoff = time.time() - max_age
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        # Only Django's spool files (tmpXXXX.upload[.ext]), in case the folder
        # is shared with something else.
        if ".upload" not in entry.name or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # another process swept it, or its request ended
            continue
    if removed:
        logger.info("Deleted %d abandoned upload file(s) from %s", removed, folder)
    return removed
