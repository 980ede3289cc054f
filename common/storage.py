"""Content-addressed blob storage (model artifacts, datasets, batches).

Keys are built only from a kind and a SHA-256 digest, e.g.
``artifacts/sha256/ab/cd/abcd....skops``: no user-supplied name ever reaches a
filesystem path. The backend is the ``artifacts`` entry of ``STORAGES``
(a local folder by default, S3-compatible in production).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from django.core.files import File
from django.core.files.storage import Storage, storages

CHUNK = 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_KINDS = {"artifacts": "skops", "datasets": "parquet", "batches": "parquet", "profiles": "npz"}


def blob_storage() -> Storage:
    return storages["artifacts"]


def sha256_of(fileobj: IO[bytes]) -> tuple[str, int]:
    """Digest and size of a file object, read in chunks from its start."""
    fileobj.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := fileobj.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    fileobj.seek(0)
    return digest.hexdigest(), size


def blob_key(kind: str, digest: str) -> str:
    if kind not in _KINDS or not _DIGEST.match(digest):
        raise ValueError(f"bad blob key parts: {kind!r} {digest!r}")
    return f"{kind}/sha256/{digest[:2]}/{digest[2:4]}/{digest}.{_KINDS[kind]}"


def store_blob(kind: str, fileobj: IO[bytes]) -> tuple[str, str, int]:
    """Store a file under its digest; returns (key, sha256, size). Idempotent."""
    digest, size = sha256_of(fileobj)
    key = blob_key(kind, digest)
    storage = blob_storage()
    if not storage.exists(key):
        saved = storage.save(key, File(fileobj))
        if saved != key:
            # Another process stored the same content meanwhile and the backend
            # picked a fresh name for ours: keep the canonical copy only.
            storage.delete(saved)
    fileobj.seek(0)
    return key, digest, size


def open_blob(key: str) -> IO[bytes]:
    return blob_storage().open(key, "rb")


@contextmanager
def local_blob_path(key: str) -> Iterator[str]:
    """A local filesystem path for a blob (the file itself, or a temporary copy)."""
    storage = blob_storage()
    try:
        path = storage.path(key)
    except NotImplementedError:
        path = None
    if path and os.path.exists(path):
        yield path
        return
    with tempfile.NamedTemporaryFile(suffix=os.path.splitext(key)[1]) as tmp:
        with storage.open(key, "rb") as src:
            shutil.copyfileobj(src, tmp, CHUNK)
        tmp.flush()
        yield tmp.name
