"""Cache of alias resolutions, the serving hot path.

An entry holds what ``GET /models/{name}/aliases/{alias}`` returns, plus the
model id for the permission check that still runs on every request (grants
take effect at once; only the payload is cached).

Invalidation is by generation: each model has a random generation token, and
an entry is valid only while it carries the current token. Every service that
changes what a resolution shows (alias moves and deletions, version and model
edits) replaces the token after commit. A reader that loaded old rows just
before a commit may still store them, but under the old token, so nobody reads
them again. Entries also expire after RESOLVE_CACHE_SECONDS.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def _generation_key(model_name: str) -> str:
    return "resolve-gen:" + _digest(model_name)


def _entry_key(model_name: str, alias: str, host: str) -> str:
    return "resolve:" + _digest(model_name, alias, host)


def resolution_get(model_name: str, alias: str, host: str) -> tuple[dict[str, Any] | None, str]:
    """(entry or None, the generation to store a fresh entry under)."""
    gen_key, entry_key = _generation_key(model_name), _entry_key(model_name, alias, host)
    values = cache.get_many([gen_key, entry_key])
    generation = values.get(gen_key)
    if generation is None:
        cache.add(gen_key, uuid.uuid4().hex, None)
        generation = cache.get(gen_key) or uuid.uuid4().hex
    entry = values.get(entry_key)
    if entry is not None and entry.get("generation") == generation:
        return entry, generation
    return None, generation


def resolution_put(
    model_name: str, alias: str, host: str, entry: dict[str, Any], generation: str
) -> None:
    cache.set(
        _entry_key(model_name, alias, host),
        {**entry, "generation": generation},
        settings.RESOLVE_CACHE_SECONDS,
    )


def resolution_forget(model_name: str) -> None:
    """Invalidate every cached resolution of a model once the transaction commits."""
    transaction.on_commit(lambda: cache.set(_generation_key(model_name), uuid.uuid4().hex, None))
