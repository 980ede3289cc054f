"""In-process cache of alias resolutions, the serving hot path.

Correctness comes from the database, not from cache invalidation messages:
``RegisteredModel.resolution_generation`` is bumped in the same transaction as
every change that alters what a resolution returns (an alias set, moved or
deleted, a version's description or tags edited). Each request reads the
model's current generation together with the caller's permission in one
statement (``registry.selectors.resolution_header``), and a payload is reused
only under the generation it was built from. A payload built from rows read
before a commit is stored under the old generation, which no later request
asks for. So there is no window in which a moved alias is served stale, in
any process, and no shared cache server is needed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

MAX_ENTRIES = 10_000

_entries: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
_lock = threading.Lock()


def resolution_get(key: tuple[Any, ...]) -> bytes | None:
    """The rendered JSON body cached under ``key``, if any."""
    with _lock:
        body = _entries.get(key)
        if body is not None:
            _entries.move_to_end(key)
        return body


def resolution_put(key: tuple[Any, ...], body: bytes) -> None:
    with _lock:
        _entries[key] = body
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)


def resolution_clear() -> None:
    with _lock:
        _entries.clear()
