"""Content-addressed blob storage (model artifacts, datasets, batches, profiles).

Keys are built only from a kind and a SHA-256 digest, e.g.
``artifacts/sha256/ab/cd/abcd....skops``: no user-supplied name ever reaches a
filesystem path or an object name. Each kind has its own entry of ``STORAGES``
(``artifacts``, ``datasets``, ``batches``, ``profiles``): a local folder by
default, an S3-compatible bucket in production (see docs/storage.md).

All bytes go through Django's storage API. Code that needs a local file (pyarrow,
skops) gets one from :func:`cached_blob_path`: a copy in a bounded local cache
that is filled from the storage, checked against the digest in the key, and
evicted least-recently-used first. Nothing ever opens the storage's own folder.

A stored object is never overwritten: a key names one content, so a second store
of the same bytes finds the object and does nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

CHUNK = 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_KINDS = {"artifacts": "skops", "datasets": "parquet", "batches": "parquet", "profiles": "npz"}
_KEY = re.compile(
    r"^(?P<kind>[a-z]+)/sha256/[0-9a-f]{2}/[0-9a-f]{2}/(?P<digest>[0-9a-f]{64})\.\w+$"
)
KINDS = tuple(_KINDS)


class BlobIntegrityError(Exception):
    """The bytes read back from the storage do not have the digest their key names."""

    def __init__(self, key: str, actual: str) -> None:
        super().__init__(f"stored object {key} has SHA-256 {actual}, not the one its key names")
        self.key = key
        self.actual = actual


def blob_storage(kind: str) -> Storage:
    """The storage of one kind of blob (an alias of ``STORAGES``)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown blob kind {kind!r}")
    return storages[kind]


def _parse(key: str) -> tuple[str, str]:
    match = _KEY.match(key)
    if not match or match["kind"] not in _KINDS:
        raise ValueError(f"not a blob key: {key!r}")
    return match["kind"], match["digest"]


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
    """Store a file under its digest; returns (key, sha256, size). Idempotent.

    The file is read in chunks (its digest), then handed to the storage, which
    streams it (S3: a multipart upload in parts of ``S3_MULTIPART_CHUNK_MB``).
    An object already under the key is left as it is (never overwritten).
    """
    digest, size = sha256_of(fileobj)
    key = blob_key(kind, digest)
    storage = blob_storage(kind)
    if not storage.exists(key):
        saved = storage.save(key, File(fileobj))
        if saved != key:
            # Another process stored the same content meanwhile and the backend
            # picked a fresh name for ours: keep the canonical copy only.
            storage.delete(saved)
    fileobj.seek(0)
    return key, digest, size


def open_blob(key: str) -> IO[bytes]:
    """The stored object, opened for reading through its storage."""
    kind, _digest = _parse(key)
    return blob_storage(kind).open(key, "rb")


def delete_blob(key: str) -> None:
    """Delete the stored object and this host's cached copy of it (retention)."""
    kind, digest = _parse(key)
    blob_storage(kind).delete(key)
    with suppress(FileNotFoundError):
        (Path(settings.BLOB_CACHE_DIR) / "entries" / f"{digest}.{_KINDS[kind]}").unlink()


def blob_exists(key: str) -> bool:
    kind, _digest = _parse(key)
    return blob_storage(kind).exists(key)


# --- the local cache ---------------------------------------------------------------

_cache_lock = threading.Lock()


def cache_dir() -> Path:
    folder = Path(settings.BLOB_CACHE_DIR)
    (folder / "entries").mkdir(parents=True, exist_ok=True)
    (folder / "using").mkdir(parents=True, exist_ok=True)
    return folder


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fill(key: str, digest: str, entry: Path) -> None:
    """Copy the stored object to ``entry``, checking its digest on the way."""
    fd, tmp_name = tempfile.mkstemp(dir=entry.parent, prefix=".fill-")
    tmp = Path(tmp_name)
    try:
        hasher = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, open_blob(key) as src:
            while chunk := src.read(CHUNK):
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            raise BlobIntegrityError(key, hasher.hexdigest())
        os.replace(tmp, entry)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def cache_trim(limit: int | None = None) -> int:
    """Evict least-recently-used entries until the cache holds at most ``limit`` bytes.

    Returns the bytes held afterwards. Files a reader is using are hard links in
    ``using/`` and survive the eviction of their entry.
    """
    limit = settings.BLOB_CACHE_MAX_BYTES if limit is None else limit
    entries = []
    for path in (cache_dir() / "entries").iterdir():
        with suppress(FileNotFoundError):
            stat = path.stat()
            entries.append((stat.st_mtime, stat.st_size, path))
    for path in (cache_dir() / "using").iterdir():
        # Links left by a killed process (its pid is in the name): remove them.
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with suppress(FileNotFoundError):
                path.unlink()
    held = sum(size for _, size, _ in entries)
    for _mtime, size, path in sorted(entries, key=lambda e: e[0]):
        if held <= limit:
            break
        with suppress(FileNotFoundError):
            path.unlink()
            held -= size
    return held


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def cached_blob_path(key: str) -> Iterator[str]:
    """A local file holding the blob, valid until the block ends.

    The bytes come from the blob's storage into the local cache
    (``BLOB_CACHE_DIR``, at most ``BLOB_CACHE_MAX_BYTES``), and their SHA-256 is
    checked against the key: a mismatch raises :class:`BlobIntegrityError` and
    nothing is cached. A model artifact is checked again on every use (its
    bytes are about to be loaded). The path given is a private hard link to the
    cache entry, removed when the block ends.
    """
    kind, digest = _parse(key)
    folder = cache_dir()
    entry = folder / "entries" / f"{digest}.{_KINDS[kind]}"
    filled = False
    if entry.exists() and (kind != "artifacts" or _hash_file(entry) == digest):
        with suppress(FileNotFoundError):
            os.utime(entry)  # most recently used
    else:
        with suppress(FileNotFoundError):
            entry.unlink()  # a changed copy of a model: fetch it again
        _fill(key, digest, entry)
        filled = True
    fd, using_name = tempfile.mkstemp(
        dir=folder / "using", prefix=f"{os.getpid()}-", suffix=entry.suffix
    )
    os.close(fd)
    using = Path(using_name)
    try:
        using.unlink()
        try:
            os.link(entry, using)
        except FileNotFoundError:  # evicted by another process just now
            _fill(key, digest, entry)
            os.link(entry, using)
        if filled:  # only a fill grows the cache
            with _cache_lock:
                cache_trim()
        yield str(using)
    finally:
        with suppress(FileNotFoundError):
            using.unlink()
