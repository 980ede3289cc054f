"""`make run` as a person uses it: the banner names the address it serves, and Ctrl-C
(SIGINT to the terminal's foreground group) or a SIGTERM to the group stops web, serve,
worker and beat within seconds, cleanly, with nothing left behind.

Each case runs the real target on the embedded default (SQLite + the filesystem broker
in a temporary VAR_DIR), without the demo data (DEMO=0) to keep it short.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
# Stop budget. Idle, each process type stops in 2-4 s on a quiet 2-core machine (most
# of it Python unloading scikit-learn, scipy and pandas, and celery's synchronous loop
# noticing the signal on the filesystem broker); a loaded CI machine takes up to ~10 s.
# The runner's cold stop (after 10 s) is for a worker busy with a task: an idle stop
# must never need it (asserted below).
STOP_BUDGET_SECONDS = 15


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def processes_with(marker: str) -> list[str]:
    """Processes (any of ours) whose environment holds ``marker``: what the run left."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


class MakeRun:
    def __init__(self, tmp_path: Path) -> None:
        self.port, self.serve_port = free_port(), free_port()
        self.var = tmp_path / "var"
        env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")
        }
        env.update(VAR_DIR=str(self.var), DEBUG="1", PYTHONUNBUFFERED="1")
        env.pop("SITE_URL", None)
        self.lines: list[str] = []
        # Its own session: the test plays the terminal, signalling the whole group.
        self.process = subprocess.Popen(
            [
                "make",
                "-s",
                "-o",
                ".venv/.runtime",
                "run",
                "DEMO=0",
                f"PORT={self.port}",
                f"SERVE_PORT={self.serve_port}",
                "WEB_WORKERS=2",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
        self.closed.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, predicate, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"never saw {what}; output:\n{self.output[-6000:]}")

    def wait_until_all_four_run(self) -> None:
        self.wait_for(lambda: "ModelGate is up" in self.output, "the web process answering")
        self.wait_for(lambda: answers(self.serve_port), "the serving process answering")
        self.wait_for(lambda: "worker | " in self.output and " ready." in self.output, "worker")
        self.wait_for(lambda: "beat: Starting..." in self.output, "beat starting")

    def signal_group(self, sig: int) -> float:
        """Send ``sig`` to the group; the seconds until every process and pipe is gone."""
        started = time.monotonic()
        os.killpg(self.process.pid, sig)
        self.process.wait(timeout=60)
        assert self.closed.wait(timeout=30), "a process still holds the output open"
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        for line in processes_with(f"VAR_DIR={self.var}"):
            pytest.fail(f"left running: {line}")


@pytest.fixture
def make_run(tmp_path: Path):
    run = MakeRun(tmp_path)
    yield run
    run.kill()


def assert_clean_stop(run: MakeRun, seconds: float) -> None:
    output = run.output
    assert seconds < STOP_BUDGET_SECONDS, f"took {seconds:.1f} s:\n{output[-4000:]}"
    assert "Segmentation fault" not in output and "SIGSEGV" not in output, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    assert "cold stop" not in output and "killing it" not in output, output[-4000:]
    assert re.search(r"^run +\| all stopped$", output, re.MULTILINE)
    # Every process type is gone: no port answers, no process of this run remains.
    assert not answers(run.port) and not answers(run.serve_port)
    assert processes_with(f"VAR_DIR={run.var}") == []


@pytest.mark.worker
def test_the_banner_names_the_address_it_serves_and_ctrl_c_stops_all_four(make_run):
    make_run.wait_until_all_four_run()
    banner = f"http://127.0.0.1:{make_run.port}"
    assert f"Starting web ({banner})" in make_run.output
    assert f"serve (http://127.0.0.1:{make_run.serve_port}/serve/" in make_run.output
    assert "127.0.0.1:8000" not in make_run.output
    seconds = make_run.signal_group(signal.SIGINT)
    assert_clean_stop(make_run, seconds)
    # The serving workers handed off their prediction log before exiting.
    assert make_run.output.count("log rows left unsent") == 2


@pytest.mark.worker
def test_a_sigterm_to_the_group_stops_all_four_cleanly(make_run):
    make_run.wait_until_all_four_run()
    seconds = make_run.signal_group(signal.SIGTERM)
    assert_clean_stop(make_run, seconds)
    assert re.search(r"^beat +\| ", make_run.output, re.MULTILINE)
