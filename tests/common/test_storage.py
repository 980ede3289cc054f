"""Blob storage on a real S3-compatible server (moto's, on 127.0.0.1) and on disk:
content addressing, integrity on read, streaming uploads, the bounded local cache."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.files.base import ContentFile

from common.storage import (
    BlobIntegrityError,
    blob_key,
    blob_storage,
    cache_dir,
    cache_trim,
    cached_blob_path,
    delete_blob,
    open_blob,
    store_blob,
)


def s3_client(config: dict[str, Any]) -> Any:
    options = config["OPTIONS"]
    return boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        region_name=options["region_name"],
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
    )


def objects(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listing = s3_client(config).list_objects_v2(Bucket=config["OPTIONS"]["bucket_name"])
    return {o["Key"]: o for o in listing.get("Contents", [])}


def test_every_kind_is_its_own_storage_and_lands_in_the_bucket(s3_storage: Any) -> None:
    stored = {}
    for kind in ("artifacts", "datasets", "batches", "profiles"):
        key, digest, size = store_blob(kind, io.BytesIO(f"{kind} bytes".encode()))
        assert key == blob_key(kind, digest) and size == len(kind) + 6
        stored[key] = f"{kind} bytes".encode()
    assert set(objects(s3_storage)) == set(stored)
    for key, data in stored.items():
        with open_blob(key) as fh:
            assert fh.read() == data
        with cached_blob_path(key) as path:
            assert Path(path).read_bytes() == data
    # No S3 storage has a local path: nothing can open its folder.
    with pytest.raises(NotImplementedError):
        blob_storage("artifacts").path(next(iter(stored)))


def test_a_stored_object_is_never_overwritten(s3_storage: Any) -> None:
    key, _digest, _size = store_blob("artifacts", io.BytesIO(b"the model"))
    before = objects(s3_storage)[key]
    time.sleep(1.1)  # S3's LastModified has a one-second resolution
    assert store_blob("artifacts", io.BytesIO(b"the model"))[0] == key
    # Even a direct save under the same name goes elsewhere (file_overwrite is off).
    other = blob_storage("artifacts").save(key, ContentFile(b"something else"))
    assert other != key
    after = objects(s3_storage)
    assert after[key]["LastModified"] == before["LastModified"]
    assert after[key]["ETag"] == before["ETag"]
    with open_blob(key) as fh:
        assert fh.read() == b"the model"


def test_bytes_that_do_not_match_their_digest_are_refused(s3_storage: Any, settings: Any) -> None:
    key, _digest, _size = store_blob("artifacts", io.BytesIO(b"honest model bytes"))
    # The object is changed behind the registry's back (bit rot, a tampering hand).
    s3_client(s3_storage).put_object(
        Bucket=s3_storage["OPTIONS"]["bucket_name"], Key=key, Body=b"tampered model bytes"
    )
    with pytest.raises(BlobIntegrityError) as excinfo, cached_blob_path(key):
        pytest.fail("a path was handed out for tampered bytes")
    assert excinfo.value.actual == hashlib.sha256(b"tampered model bytes").hexdigest()
    # Nothing was cached, nothing left behind.
    folder = cache_dir()
    assert list((folder / "entries").iterdir()) == []
    assert list((folder / "using").iterdir()) == []


def test_a_changed_cache_copy_of_a_model_is_replaced_from_the_storage(s3_storage: Any) -> None:
    key, digest, _size = store_blob("artifacts", io.BytesIO(b"model v1"))
    with cached_blob_path(key) as path:
        assert Path(path).read_bytes() == b"model v1"
    entry = cache_dir() / "entries" / f"{digest}.skops"
    entry.write_bytes(b"evil")  # the local copy is changed
    with cached_blob_path(key) as path:
        assert Path(path).read_bytes() == b"model v1"
    assert entry.read_bytes() == b"model v1"


def test_a_large_upload_streams_in_parts_without_being_held_in_memory(
    s3_storage: Any, settings: Any, tmp_path: Path
) -> None:
    from config.settings import s3_storage_config

    chunk = 5 * 1024 * 1024  # S3's smallest part
    options = s3_storage["OPTIONS"]
    config = s3_storage_config(options["bucket_name"], endpoint_url=options["endpoint_url"])
    config["OPTIONS"].update(access_key=options["access_key"], secret_key=options["secret_key"])
    transfer = config["OPTIONS"]["transfer_config"]
    transfer.multipart_threshold = transfer.multipart_chunksize = chunk
    transfer.max_concurrency = 2
    transfer.max_in_memory_upload_chunks = 2
    storages = dict(settings.STORAGES)
    storages["datasets"] = config
    settings.STORAGES = storages

    size = 64 * 1024 * 1024
    big = tmp_path / "big.parquet"
    digest = hashlib.sha256()
    with big.open("wb") as out:
        for _ in range(size // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    store_blob("datasets", io.BytesIO(b"warm-up"))  # boto3 loads its models once
    tracemalloc.start()
    try:
        with big.open("rb") as fh:
            key, stored_digest, stored_size = store_blob("datasets", fh)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (stored_digest, stored_size) == (digest.hexdigest(), size)
    assert peak < min(size / 3, 6 * chunk), (
        f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"
    )
    head = s3_client(s3_storage).head_object(Bucket=options["bucket_name"], Key=key)
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith(f"-{size // chunk + 1}")  # a multipart upload
    print(f"peak traced memory {peak / 2**20:.1f} MiB uploading {size / 2**20:.0f} MiB")


def test_the_cache_is_bounded_least_recently_used_goes_first(
    s3_storage: Any, settings: Any
) -> None:
    blob = 100_000
    settings.BLOB_CACHE_MAX_BYTES = int(2.5 * blob)
    keys = [store_blob("batches", io.BytesIO(os.urandom(blob)))[0] for _ in range(4)]
    entries = cache_dir() / "entries"
    for i, key in enumerate(keys):
        with cached_blob_path(key) as path:
            assert os.path.getsize(path) == blob
        os.utime(entries / key.rsplit("/", 1)[1], (1_000_000 + i, 1_000_000 + i))
        held = sum(p.stat().st_size for p in entries.iterdir())
        assert held <= settings.BLOB_CACHE_MAX_BYTES
    names = sorted(p.name for p in entries.iterdir())
    assert names == sorted(k.rsplit("/", 1)[1] for k in keys[2:])  # the two newest
    assert list((cache_dir() / "using").iterdir()) == []  # every reader's link is gone


def test_a_path_in_use_survives_eviction_and_is_removed_after(
    s3_storage: Any, settings: Any
) -> None:
    settings.BLOB_CACHE_MAX_BYTES = 0  # every entry is evicted at once
    first = store_blob("batches", io.BytesIO(b"a" * 1000))[0]
    second = store_blob("batches", io.BytesIO(b"b" * 1000))[0]
    with cached_blob_path(first) as path_a:
        with cached_blob_path(second) as path_b:
            assert Path(path_a).read_bytes() == b"a" * 1000
            assert Path(path_b).read_bytes() == b"b" * 1000
        assert not os.path.exists(path_b)
    assert not os.path.exists(path_a)
    assert list((cache_dir() / "entries").iterdir()) == []


def test_links_left_by_a_killed_process_are_cleaned(settings: Any) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    stale = cache_dir() / "using" / f"{dead.stdout.strip()}-abc.parquet"
    stale.write_bytes(b"x" * 10)
    mine = cache_dir() / "using" / f"{os.getpid()}-def.parquet"
    mine.write_bytes(b"y")
    cache_trim()
    assert not stale.exists() and mine.exists()


def test_on_disk_too_reads_go_through_the_checked_cache(settings: Any) -> None:
    key, digest, _size = store_blob("artifacts", io.BytesIO(b"local model"))
    stored = Path(blob_storage("artifacts").path(key))
    with cached_blob_path(key) as path:
        assert Path(path) != stored and Path(path).read_bytes() == b"local model"
    (cache_dir() / "entries" / f"{digest}.skops").unlink()
    stored.write_bytes(b"rotten model")
    with pytest.raises(BlobIntegrityError), cached_blob_path(key):
        pass


def test_deleting_a_blob_removes_its_cached_copy_too(s3_storage: Any) -> None:
    key, digest, _size = store_blob("batches", io.BytesIO(b"expired rows"))
    with cached_blob_path(key):
        pass
    assert (cache_dir() / "entries" / f"{digest}.parquet").exists()
    delete_blob(key)
    assert key not in objects(s3_storage)
    assert not (cache_dir() / "entries" / f"{digest}.parquet").exists()
