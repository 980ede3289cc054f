"""audit_verify finds a tampered row; the exported JSON Lines verify with the documented snippet.

UPDATE/DELETE refused on PostgreSQL: tests/common/test_audit.py.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from common.models import AuditEvent
from tests.governance.review_support import high_risk_version

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def tamper(seq: int, actor: str) -> None:
    """Change a row behind the application's back, as an attacker with SQL access would."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"ALTER TABLE {table} DISABLE TRIGGER common_auditevent_no_update_delete"
            )
        cursor.execute("UPDATE common_auditevent SET actor = %s WHERE seq = %s", [actor, seq])
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER common_auditevent_no_update_delete")


def test_an_intact_chain_verifies(personas):
    high_risk_version(personas)
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    count = AuditEvent.objects.count()
    assert re.match(rf"audit chain OK: {count} events verified", out.getvalue())


def test_a_row_changed_in_sql_is_found_as_the_first_broken_link(personas):
    high_risk_version(personas)
    target = AuditEvent.objects.order_by("seq")[3].seq
    tamper(target, "mallory")
    with pytest.raises(CommandError, match=rf"BROKEN at seq {target}: hash does not match"):
        call_command("audit_verify")


def test_a_deleted_row_breaks_the_link_after_it(personas):
    high_risk_version(personas)
    target = AuditEvent.objects.order_by("seq")[2].seq
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"ALTER TABLE {table} DISABLE TRIGGER common_auditevent_no_update_delete"
            )
        cursor.execute("DELETE FROM common_auditevent WHERE seq = %s", [target])
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER common_auditevent_no_update_delete")
    with pytest.raises(CommandError, match=rf"BROKEN at seq {target + 1}: gap"):
        call_command("audit_verify")


def _doc_snippet() -> str:
    text = (ROOT / "docs" / "audit.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_an_export_verifies_with_the_documented_standalone_snippet(personas, tmp_path):
    high_risk_version(personas)
    export = tmp_path / "audit.jsonl"
    call_command("audit_export", output=str(export))
    script = tmp_path / "verify.py"
    script.write_text(_doc_snippet())
    run = [sys.executable, "-I", str(script), str(export)]
    count = AuditEvent.objects.count()
    assert subprocess.run(run, capture_output=True, text=True).stdout.strip() == (
        f"OK: {count} events"
    )
    lines = export.read_text().splitlines()
    second = json.loads(lines[1])
    second["actor"] = "mallory"
    lines[1] = json.dumps(second)
    export.write_text("\n".join(lines) + "\n")
    broken = subprocess.run(run, capture_output=True, text=True).stdout
    assert broken.startswith(f"BROKEN at seq {second['seq']}: content does not match")
