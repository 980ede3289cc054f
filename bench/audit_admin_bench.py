"""The auditor admin and audit_verify on a big audit trail (PostgreSQL).

    .venv/bin/python bench/audit_admin_bench.py [--events 1000000]

What it does (prints figures; never a test):
1. creates the database ``modelgate_audit_bench`` on the local PostgreSQL
   (dropping an old one) and migrates it;
2. seeds N audit events with a valid hash chain. The events are computed with
   ``common.audit`` (same payload, same canonical JSON, same SHA-256) and
   written with ``COPY``: this is a documented bypass of ``audit_record`` (one
   INSERT per event would take hours), and it goes through the front door as
   far as the trigger cares, because it only inserts. The chain head is moved
   to the last event so the application continues the chain;
3. logs in as a staff auditor with Django's test client and times the admin
   changelist: the first page, a filter by action, an exact search by actor,
   and page 200 - none of which may run COUNT(*) over the table;
4. runs ``audit_verify`` and prints its throughput (events/s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "modelgate_audit_bench"
ACTIONS = [
    "registry.version.registered",
    "registry.version.ready",
    "registry.alias.set",
    "governance.review.in_review",
    "governance.signoff.created",
    "governance.evidence.filed",
]


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        DATABASE_URL=f"{PG}/{DB_NAME}",
        DEBUG="1",
        ALLOWED_HOSTS="testserver,localhost",
        AXES_ENABLED="0",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def seed(count: int) -> None:
    import hashlib

    from django.db import connection

    from common.audit import GENESIS_HASH, canonical_bytes, format_timestamp
    from common.models import AuditChainHead

    columns = (
        "seq, occurred_at, actor_id, actor, action, object_type, object_id, object_repr, "
        "before, after, request_id, prev_hash, hash"
    )
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    prev = GENESIS_HASH
    batch = 50_000
    started = time.monotonic()
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg cursor, for COPY
        for offset in range(0, count, batch):
            buffer = io.StringIO()
            rows = []
            for seq in range(offset + 1, min(offset + batch, count) + 1):
                moment = start + dt.timedelta(seconds=seq)
                payload = {
                    "seq": seq,
                    "occurred_at": format_timestamp(moment),
                    "actor_id": None,
                    "actor": f"user{seq % 50}",
                    "action": ACTIONS[seq % len(ACTIONS)],
                    "object_type": "registry.modelversion",
                    "object_id": str(seq % 5000),
                    "object_repr": f"model{seq % 100} v{seq % 50}",
                    "before": None,
                    "after": {"n": seq},
                    "request_id": "",
                    "prev_hash": prev,
                }
                digest = hashlib.sha256(canonical_bytes(payload)).hexdigest()
                rows.append((payload, moment, digest))
                prev = digest
            for payload, moment, digest in rows:
                buffer.write(
                    "\t".join(
                        [
                            str(payload["seq"]),
                            moment.isoformat(),
                            r"\N",
                            payload["actor"],
                            payload["action"],
                            payload["object_type"],
                            payload["object_id"],
                            payload["object_repr"],
                            r"\N",
                            json.dumps(payload["after"]),
                            "",
                            payload["prev_hash"],
                            digest,
                        ]
                    )
                    + "\n"
                )
            buffer.seek(0)
            with raw.copy(f"COPY common_auditevent ({columns}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
            print(f"  seeded {min(offset + batch, count):>9,} events", end="\r", flush=True)
        AuditChainHead.objects.update_or_create(pk=1, defaults={"seq": count, "last_hash": prev})
        cursor.execute("ANALYZE common_auditevent")
    print(f"\nseeded {count:,} events in {time.monotonic() - started:.1f}s")


def time_admin() -> None:
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from common.apps import AUDITORS_GROUP

    auditor, _ = User.objects.get_or_create(username="bench-auditor", defaults={"is_staff": True})
    auditor.groups.add(Group.objects.get(name=AUDITORS_GROUP))
    client = Client()
    client.force_login(auditor)
    urls = {
        "first page": "/admin/common/auditevent/",
        "filter by action": "/admin/common/auditevent/?action=registry.alias.set",
        "exact search by actor": "/admin/common/auditevent/?q=user7",
        "page 200": "/admin/common/auditevent/?p=200",
    }
    for label, url in urls.items():
        client.get(url)  # warm
        timings = []
        for _ in range(5):
            with CaptureQueriesContext(connection) as queries:
                started = time.monotonic()
                response = client.get(url)
                timings.append(time.monotonic() - started)
            assert response.status_code == 200, (url, response.status_code)
        full_counts = [
            q["sql"]
            for q in queries.captured_queries
            if "COUNT(*)" in q["sql"].upper()
            and "common_auditevent" in q["sql"]
            and "LIMIT" not in q["sql"].upper()
        ]
        timings.sort()
        print(
            f"admin {label:<22} median {timings[2] * 1000:7.1f} ms  max {timings[-1] * 1000:7.1f} ms"
            f"  queries {len(queries.captured_queries)}  unbounded counts {len(full_counts)}"
        )


def time_verify() -> None:
    from governance.audit_trail import verify_chain

    started = time.monotonic()
    verdict = verify_chain()
    seconds = time.monotonic() - started
    print(
        f"audit_verify: {'OK' if verdict.ok else 'BROKEN at ' + str(verdict.broken_seq)} "
        f"{verdict.checked:,} events in {seconds:.1f}s ({verdict.checked / seconds:,.0f} events/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    args = parser.parse_args()
    if not args.reuse:
        sh("psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}")
        sh("psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {DB_NAME}")
    setup_django()
    from django.core.management import call_command

    if not args.reuse:
        call_command("migrate", verbosity=0)
        from common.models import AuditEvent

        # Migrations append their own events (policies seeded by a system actor
        # write none); start the bench chain on an empty table.
        if AuditEvent.objects.exists():
            raise SystemExit("the fresh database already has audit events; seed would fork")
        seed(args.events)
    time_admin()
    time_verify()


if __name__ == "__main__":
    main()
