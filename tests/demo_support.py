"""The demo's data (``manage.py demo``) loaded once per test session and restored per test.

Loading the demo trains, evaluates and audits its versions and simulates two weeks of
traffic: tens of seconds. Tests that read the demo's story (its pages, its timeline)
restore a snapshot of it instead: ``demo_data`` loads the demo once, inside a
transaction that is rolled back, after copying every table out (PostgreSQL ``COPY``,
binary) and the blobs it wrote; ``restore()`` puts exactly those rows (and sequence
values) and blobs back into the current test's database and storage, in one
transaction. ``tests/demo/test_demo_command.py`` still loads the demo itself: it
tests the loading.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from registry.cache import resolution_clear


@dataclass
class DemoSnapshot:
    tables: dict[str, bytes]  # table -> its rows, COPY (FORMAT BINARY)
    sequences: list[tuple[str, int]]  # (qualified name, last value)
    blobs: Path  # what the demo wrote to its blob storage

    def restore(self) -> None:
        """Replace every table's rows with the demo's, and copy its blobs into this
        test's blob storage (every kind shares one folder, see ``_fast_and_isolated``)."""
        names = ", ".join(connection.ops.quote_name(t) for t in self.tables)
        with transaction.atomic(), connection.cursor() as wrapper:
            cursor = wrapper.cursor  # psycopg's own: COPY
            cursor.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            for table, data in self.tables.items():
                quoted = connection.ops.quote_name(table)
                with cursor.copy(f"COPY {quoted} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(data)
            for name, value in self.sequences:
                cursor.execute("SELECT setval(%s, %s, true)", [name, value])
        for kind in settings.BLOB_KINDS:
            location = settings.STORAGES[kind]["OPTIONS"]["location"]
            shutil.copytree(self.blobs, location, dirs_exist_ok=True)
        ContentType.objects.clear_cache()
        resolution_clear()


def _copy_out() -> tuple[dict[str, bytes], list[tuple[str, int]]]:
    tables = {}
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        for table in sorted(connection.introspection.django_table_names(only_existing=True)):
            quoted = connection.ops.quote_name(table)
            with cursor.copy(f"COPY {quoted} TO STDOUT (FORMAT BINARY)") as copy:
                tables[table] = b"".join(bytes(block) for block in copy)
        cursor.execute(
            "SELECT schemaname || '.' || sequencename, last_value FROM pg_sequences"
            " WHERE last_value IS NOT NULL AND schemaname = current_schema()"
        )
        sequences = [(name, value) for name, value in cursor.fetchall()]
    return tables, sequences


@pytest.fixture(scope="session")
def demo_data(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoSnapshot]:
    if connection.vendor != "postgresql":
        pytest.skip("the demo snapshot uses PostgreSQL's COPY")
    folder = tmp_path_factory.mktemp("demo-snapshot")
    blobs = folder / "blobs"
    storages = dict(settings.STORAGES)
    for kind in settings.BLOB_KINDS:
        storages[kind] = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blobs)},
        }
    with (
        django_db_blocker.unblock(),
        override_settings(
            STORAGES=storages,
            BLOB_CACHE_DIR=str(folder / "blob-cache"),
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            AXES_ENABLED=False,
        ),
    ):
        resolution_clear()
        # Loaded as the tests loaded it (test_timeline.py's module did): in a
        # transaction, rolled back, so nothing is committed or sent to a broker.
        with transaction.atomic():
            call_command("demo", stdout=io.StringIO())
            tables, sequences = _copy_out()
            transaction.set_rollback(True)
        ContentType.objects.clear_cache()
        resolution_clear()
    blobs.mkdir(exist_ok=True)
    yield DemoSnapshot(tables, sequences, blobs)
