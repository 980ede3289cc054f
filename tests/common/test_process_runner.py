"""config/run.py with stand-in processes: a busy process is stopped cold, then killed, in
bounded time; a process that dies on its own stops the others; the signal goes to each
main process only, never to its children (celery's pool, gunicorn's workers)."""

from __future__ import annotations

import io
import signal
import sys
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path

from config.run import Child, Runner

# A main process with one child in its group that records the signals it gets.
PARENT = """
import os, signal, subprocess, sys, time
log = open(sys.argv[1], "a", buffering=1)
child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\\n"
    "log = open(sys.argv[1], 'a', buffering=1)\\n"
    "signal.signal(signal.SIGTERM, lambda *a: log.write('child TERM\\\\n'))\\n"
    "time.sleep(60)", sys.argv[1]])
mode = sys.argv[2]
def on_term(*_):
    log.write("parent TERM\\n")
    if mode == "polite":
        child.kill(); sys.exit(0)
def on_quit(*_):
    log.write("parent QUIT\\n")
    if mode == "busy":
        child.kill(); sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGQUIT, on_quit)
print("up", flush=True)
if mode == "crash":
    time.sleep(1); sys.exit(3)
while True:
    time.sleep(0.1)
"""


def stand_in(tmp_path: Path, name: str, mode: str, **kwargs) -> Child:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    return Child(name, [sys.executable, str(script), str(tmp_path / f"{name}.log"), mode], **kwargs)


def run_until_signalled(runner: Runner, after: float) -> tuple[int, float, str]:
    out = io.StringIO()

    def interrupt() -> None:
        time.sleep(after)
        signal.raise_signal(signal.SIGTERM)  # what make's group gets on Ctrl-C / kill

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with redirect_stdout(out):
        status = runner.watch()
    return status, time.monotonic() - started - after, out.getvalue()


def test_a_polite_process_gets_one_sigterm_and_its_children_none(tmp_path: Path):
    runner = Runner([stand_in(tmp_path, "web", "polite")], stop_timeout=5, kill_after=2)
    status, stopping, output = run_until_signalled(runner, after=1.5)
    assert status == 0 and stopping < 2
    assert (tmp_path / "web.log").read_text() == "parent TERM\n"  # the child heard nothing
    assert "web    | up" in output or "web | up" in output
    assert "SIGTERM received: stopping web" in output and "all stopped" in output


def test_a_busy_worker_is_stopped_cold_after_the_timeout_and_a_deaf_one_killed(tmp_path: Path):
    runner = Runner(
        [
            stand_in(tmp_path, "worker", "busy", second_signal=signal.SIGQUIT),
            stand_in(tmp_path, "deaf", "deaf"),
        ],
        stop_timeout=1.0,
        kill_after=1.0,
    )
    status, stopping, output = run_until_signalled(runner, after=1.5)
    assert status == 0
    assert 1.8 < stopping < 4  # the timeout, the cold stop, the kill: bounded
    assert (tmp_path / "worker.log").read_text() == "parent TERM\nparent QUIT\n"
    assert "worker still busy after 1 s: cold stop" in output
    assert "deaf did not stop: killing it" in output
    # The deaf process's child went with its group: nothing of either run is left.
    assert "child TERM" not in (tmp_path / "deaf.log").read_text()


def test_a_process_that_dies_on_its_own_stops_the_others(tmp_path: Path):
    runner = Runner(
        [stand_in(tmp_path, "serve", "crash"), stand_in(tmp_path, "web", "polite")],
        stop_timeout=5,
        kill_after=2,
    )
    out = io.StringIO()
    with redirect_stdout(out):
        assert runner.watch() == 1
    assert "serve exited with status 3: stopping web" in out.getvalue()
    assert (tmp_path / "web.log").read_text() == "parent TERM\n"
