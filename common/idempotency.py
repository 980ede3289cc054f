"""Safe retries after a lost answer: the ``Idempotency-Key`` request header.

A pipeline whose request timed out, or whose web process died after the
commit, cannot know whether its change happened. It retries with the same
``Idempotency-Key`` and gets the first answer again, without a second change:

- same user, endpoint (method + path) and key, same request: the stored
  status and body, with ``Idempotent-Replayed: true``;
- same key with another request (method, query string or body): ``409
  idempotency_key_reused``;
- a key is kept for ``IDEMPOTENCY_KEY_TTL_HOURS`` (a day), then purged by beat.

Only successful (2xx) answers are kept: a refused request changed nothing, so
its retry runs again (and is refused again, or succeeds if the cause is gone).

How a kill after the commit stays safe: the action runs in one transaction
that first claims the key (INSERT under a unique constraint), then runs the
view (whose service writes, audits and schedules its on-commit work inside
it) and stores the rendered answer on the key row, then commits. The key and
its answer are committed exactly when the change is, so a retry after any
crash either finds both or neither.

How a concurrent duplicate is kept out: its INSERT of the same key waits on
the unique index for the first transaction (PostgreSQL; SQLite serialises
writers at BEGIN), then fails once the first commits, and the duplicate
replays the first answer instead of running. If the first rolls back, the
duplicate's INSERT goes through and it runs itself.

The cost: the whole action, including the service's slow part (a dataset's
conversion), runs inside one transaction when a key is sent. On PostgreSQL
that holds a connection and the key's index entry; on the embedded SQLite it
holds the database's write lock for the request.

An API action opts in with one line, ``@idempotent`` on its method.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request, is_form_media_type
from rest_framework.response import Response

from common.errors import DomainError
from common.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Visible ASCII, as in the IETF draft's examples (UUIDs, run ids, hashes).
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_CHUNK = 1024 * 1024

PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    pattern=r"^[!-~]{1,255}$",
    description=(
        "Any unique string (1-255 visible ASCII characters), e.g. a UUID. A retry with the "
        "same key and the same request returns the first answer instead of acting twice; "
        "the same key with another request is a 409. Keys are kept for a day."
    ),
)


class _KeyTaken(Exception):
    """Another transaction holds (or has committed) this key."""


def request_sha256(request: Request) -> str:
    """A digest of what the request asks for: method, query string and body.

    JSON bodies are hashed in canonical form (sorted keys); multipart bodies as
    their fields (sorted by name) and each file's name and bytes, streamed.
    Every part is length-prefixed, so no two different requests share a stream.
    """
    digest = hashlib.sha256()

    def feed(*parts: str | bytes) -> None:
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)

    feed(request.method or "", request._request.META.get("QUERY_STRING", ""))
    if is_form_media_type(request.content_type):
        for name in sorted(request.POST):
            feed("field", name, *request.POST.getlist(name))
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                feed("file", name, upload.name or "")
                digest.update(upload.size.to_bytes(8, "big"))
                upload.seek(0)
                for chunk in upload.chunks(_CHUNK):
                    digest.update(chunk)
                upload.seek(0)
    else:
        feed("json", json.dumps(request.data, sort_keys=True, separators=(",", ":")))
    return digest.hexdigest()


def _claim(*, user: Any, endpoint: str, key: str, fingerprint: str) -> IdempotencyKey:
    """Insert the key row (inside the caller's transaction), or raise _KeyTaken."""
    expired = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    IdempotencyKey.objects.filter(
        user=user, endpoint=endpoint, key=key, created_at__lt=expired
    ).delete()
    try:
        with transaction.atomic():  # a savepoint: the failed INSERT leaves the rest usable
            return IdempotencyKey.objects.create(
                user=user,
                endpoint=endpoint,
                key=key,
                request_sha256=fingerprint,
                status_code=0,  # replaced by the answer before this transaction commits
            )
    except IntegrityError:
        raise _KeyTaken from None


def _replay(*, user: Any, endpoint: str, key: str, fingerprint: str) -> HttpResponse:
    row = IdempotencyKey.objects.filter(user=user, endpoint=endpoint, key=key).first()
    if row is None:  # the holder rolled back after our INSERT failed: very rare
        raise DomainError(
            "idempotency_key_in_use",
            "A request with this Idempotency-Key was running; retry.",
            status=409,
        )
    if row.request_sha256 != fingerprint:
        raise DomainError(
            "idempotency_key_reused",
            f"This {HEADER} was already used with another request at this endpoint.",
            details={"header": HEADER},
            status=409,
        )
    response = HttpResponse(
        row.response_body, status=row.status_code, content_type="application/json"
    )
    response[REPLAYED_HEADER] = "true"
    return response


def _run(
    view_method: Callable[..., Any], view: Any, request: Request, key: str, args: Any, kwargs: Any
) -> Any:
    if not _KEY.match(key):
        raise DomainError(
            "invalid_idempotency_key",
            f"{HEADER} must be 1 to 255 visible ASCII characters.",
            details={"header": HEADER},
        )
    user = request.user
    endpoint = f"{request.method} {request.path}"
    if not user.is_authenticated or len(endpoint) > 512:
        return view_method(view, request, *args, **kwargs)  # the view refuses it anyway
    fingerprint = request_sha256(request)  # parses the body: bad input is a 4xx here
    try:
        with transaction.atomic():
            row = _claim(user=user, endpoint=endpoint, key=key, fingerprint=fingerprint)
            response = view_method(view, request, *args, **kwargs)
            # An exception above rolls back the change and the key together.
            if isinstance(response, Response) and 200 <= response.status_code < 300:
                row.status_code = response.status_code
                row.response_body = JSONRenderer().render(response.data).decode()
                row.save(update_fields=["status_code", "response_body"])
            else:
                row.delete()  # nothing worth replaying: a retry runs again
    except _KeyTaken:
        return _replay(user=user, endpoint=endpoint, key=key, fingerprint=fingerprint)
    return response


def idempotent(view_method: Callable[..., Any]) -> Callable[..., Any]:
    """Opt an API action into ``Idempotency-Key`` handling (and document the header)."""

    @functools.wraps(view_method)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(view, request, *args, **kwargs)
        return _run(view_method, view, request, key, args, kwargs)

    return extend_schema(parameters=[PARAMETER])(wrapper)


def idempotency_keys_purge() -> int:
    """Delete keys older than IDEMPOTENCY_KEY_TTL_HOURS; returns how many."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
