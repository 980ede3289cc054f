"""`manage.py loop` (what `make loop` runs) against real processes, both rounds.

One test, a few minutes: the command is run as `make loop` runs it (a subprocess on a
fresh embedded state: SQLite and the filesystem broker in a temporary VAR_DIR, its own
web, serve, worker and beat), with fewer drifted rows and shorter canary steps than
the default (the same code path). Its outcomes are then read back from its database.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_loop_runs_both_rounds_against_real_processes(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "VAR_DIR") and not k.startswith("PYTEST")
    }
    env.update(VAR_DIR=str(tmp_path), DEBUG="1", SECRET_KEY="loop-test-" + "x" * 50)
    port, serve_port = free_port(), free_port()
    result = subprocess.run(  # our own command line
        [
            sys.executable,
            "manage.py",
            "loop",
            "--port",
            str(port),
            "--serve-port",
            str(serve_port),
            "--rows",
            "800",
            "--step-seconds",
            "8",
            "--timeout",
            "180",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-6000:]

    # What a person reads: the signatures, the timeline with hashes, the verdicts.
    assert out.count(">>> A PERSON SIGNS HERE") >= 6, out  # three signers, two rounds
    # Round two's candidate is stopped by its replay (its accuracy on the logged requests
    # that labels joined): no caller ever saw it.
    assert "Round one: succeeded; round two: failed (replay failed: accuracy" in out, out
    timeline = out.split("Timeline (time UTC, step, audit event hash):", 1)[1]
    hashes = re.findall(r"^  \d\d:\d\d:\d\d  .{38} ([0-9a-f]{16})  ", timeline, re.MULTILINE)
    assert len(hashes) >= 15, timeline
    assert "Audit chain:" in out and "OK" in out.split("Audit chain:", 1)[1].upper(), out
    assert re.search(r"Wall time: \d+ s", out)

    # What the database holds (the command's own SQLite file).
    db = sqlite3.connect(tmp_path / "modelgate.sqlite3")
    kinds = {
        row[0]
        for row in db.execute(
            "select a.kind from monitoring_alert a join monitoring_monitor m "
            "on a.monitor_id = m.id where m.name like 'loop-%'"
        )
    }
    assert {"drift", "performance"} <= kinds
    runs = db.execute(
        "select r.outcome, v.number from lifecycle_retrainingrun r "
        "join registry_modelversion v on r.version_id = v.id "
        "where r.trigger = 'alert' order by r.id desc limit 1"
    ).fetchone()
    assert runs[0] == "candidate_submitted"
    reviewed = dict(
        db.execute(
            "select v.number, r.state from governance_review r "
            "join registry_modelversion v on r.version_id = v.id"
        ).fetchall()
    )
    assert reviewed[runs[1]] == "approved"
    deployments = db.execute(
        "select v.number, d.state, d.reason from lifecycle_deployment d "
        "join registry_modelversion v on d.version_id = v.id "
        "where d.strategy = 'canary' order by d.id"
    ).fetchall()
    assert [d[1] for d in deployments[-2:]] == ["succeeded", "failed"]
    assert deployments[-2][0] == runs[1]
    assert deployments[-1][2].startswith("replay failed: accuracy "), deployments[-1][2]
    assert "no caller saw the candidate" in deployments[-1][2]
    stable = db.execute(
        "select v.number from lifecycle_environment e join registry_modelversion v "
        "on e.stable_version_id = v.id join registry_registeredmodel m "
        "on e.registered_model_id = m.id where m.name = 'credit-default' and e.name = 'production'"
    ).fetchone()
    assert stable[0] == runs[1], "the promoted candidate still serves after round two"
