"""Real processes for tests, started one way: a Celery worker or beat, and gunicorn (the
web app, the serving process type, or a test-only WSGI app), each in a session (and
process group) of its own, logging to a file, waited for until it is ready.

Tests that stop a process as part of what they check call ``stop`` (SIGTERM by default,
any signal; SIGKILL after ``timeout``). The ``real_processes`` fixture (tests/conftest.py)
starts processes for a test and, at its end, kills those still running at once
(SIGKILL to the group): a graceful stop of an idle process costs 2-4 s of unloading
scikit-learn, pandas and scipy and is checked only where it is the point
(tests/common/test_make_run.py, the serving hand-off on SIGTERM). Their logs are kept
in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT_DIR = ROOT / "test-artifacts"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
POLL_SECONDS = 0.05  # readiness checks are cheap: a log read or a /healthz on loopback


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RealProcess:
    process: subprocess.Popen
    log: Path
    env: dict[str, str]
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def connection(self, timeout: float = 60) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def answers(self, path: str = "/healthz") -> bool:
        try:
            connection = self.connection(timeout=2)
            try:
                connection.request("GET", path)
                return connection.getresponse().status == 200
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            return False

    def worker_pids(self) -> list[int]:
        """The master's children (gunicorn's workers; a new pid after a respawn)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def spawn(
    argv: list[str], env: dict[str, str], log: Path, port: int = 0, cwd: Path = ROOT
) -> RealProcess:
    """``argv`` in ``cwd``: another working directory is a separate "host" (the project
    is then found through ``PYTHONPATH`` in ``env``)."""
    with log.open("ab") as handle:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a test signals it and its children
        )
    return RealProcess(process, log, env, port)


def wait_ready(
    started: RealProcess, ready: Callable[[], bool], what: str, timeout: float = 60
) -> RealProcess:
    """Return ``started`` once ``ready()``; kill it and raise (with its log) if it dies or
    is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return started
        if started.process.poll() is not None:
            break
        time.sleep(POLL_SECONDS)
    stop(started, signal.SIGKILL)
    raise RuntimeError(f"{what} did not start:\n" + started.output()[-4000:])


def stop(started: RealProcess, sig: int = signal.SIGTERM, timeout: float = 40) -> None:
    """Send ``sig`` to the process's group; SIGKILL the group after ``timeout`` seconds."""
    if started.process.poll() is None:
        try:
            os.killpg(started.pid, sig)
            started.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(started.pid, signal.SIGKILL)
            started.process.wait()
        except ProcessLookupError:
            started.process.wait()


# --- Celery --------------------------------------------------------------------------


def start_worker(
    env: dict[str, str], log: Path, *extra: str, app: str = "config", cwd: Path = ROOT
) -> RealProcess:
    """``celery worker`` on both queues, one prefork child; ready when it says so."""
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", "quick,heavy"]
    argv += ["--concurrency", "1", "--pool", "prefork", "-l", "info"]
    argv += ["--without-mingle", "--without-gossip", *extra]
    worker = spawn(argv, env, log, cwd=cwd)
    return wait_ready(worker, lambda: "ready." in worker.output(), "celery worker")


def start_beat(env: dict[str, str], log: Path, cwd: Path = ROOT) -> RealProcess:
    """``celery beat`` waking at least every second (not waited for: it only sends)."""
    argv = [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info"]
    return spawn([*argv, "--max-interval", "1"], env, log, cwd=cwd)


# --- gunicorn ------------------------------------------------------------------------


def start_gunicorn(
    env: dict[str, str],
    log: Path,
    *args: str,
    port: int,
    workers: int = 0,
    what: str = "gunicorn",
    cwd: Path = ROOT,
) -> RealProcess:
    """``gunicorn *args``, ready when /healthz answers 200 on ``port`` (and, if
    ``workers``, when that many workers have booted: the first answer may come first)."""
    server = spawn([GUNICORN, *args], env, log, port, cwd=cwd)

    def ready() -> bool:
        return server.answers() and (not workers or len(server.worker_pids()) == workers)

    return wait_ready(server, ready, what)


def start_web(
    env: dict[str, str],
    log: Path,
    *,
    app: str = "config.wsgi",
    port: int = 0,
    workers: int = 1,
) -> RealProcess:
    """``gunicorn <app>`` with sync workers on a loopback port (a free one unless given)."""
    port = port or free_port()
    bind = ["-b", f"127.0.0.1:{port}", "-w", str(workers), "--timeout", "120"]
    return start_gunicorn(env, log, app, *bind, port=port, what="the web process")


def start_configured_web(
    env: dict[str, str], log: Path, workers: int = 2, cwd: Path = ROOT
) -> RealProcess:
    """The web process type as deployed: config/gunicorn_web.py, JSON logs, metrics."""
    port = free_port()
    web_env = dict(
        env,
        WEB_PORT=str(port),
        WEB_WORKERS=str(workers),
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(log.parent / f"prometheus-web-{port}"),
    )
    args = ("-c", str(ROOT / "config" / "gunicorn_web.py"), "config.wsgi")
    return start_gunicorn(
        web_env, log, *args, port=port, workers=workers, what="the web process", cwd=cwd
    )


def start_serve(
    env: dict[str, str], log: Path, port: int = 0, workers: int = 2, cwd: Path = ROOT
) -> RealProcess:
    """The serving process type: config/gunicorn_serve.py, polling its routing every 0.2 s."""
    port = port or free_port()
    serve_env = dict(
        env,
        SERVE_PORT=str(port),
        SERVE_WORKERS=str(workers),
        SERVE_THREADS="4",
        SERVE_POLL_SECONDS="0.2",
        PROMETHEUS_MULTIPROC_DIR=str(log.parent / f"prometheus-{port}"),
    )
    args = ("-c", str(ROOT / "config" / "gunicorn_serve.py"), "config.wsgi")
    return start_gunicorn(serve_env, log, *args, port=port, what="the serving process", cwd=cwd)


# --- one test's processes ------------------------------------------------------------


@dataclass
class RealProcesses:
    """What a test started through the ``real_processes`` fixture: each call starts one
    process on ``env`` (the worker environment, see ``worker_env``) plus ``extra`` settings,
    logging to ``folder``/<name>.log."""

    env: dict[str, str]
    folder: Path
    label: str
    started: list[RealProcess] = field(default_factory=list)

    def _log(self, name: str) -> Path:
        """A log of its own, even when a name is reused (a restarted worker)."""
        log, n = self.folder / f"{name}.log", 1
        while log.exists():
            n += 1
            log = self.folder / f"{name}-{n}.log"
        return log

    def _keep(self, started: RealProcess) -> RealProcess:
        self.started.append(started)
        return started

    def worker(
        self,
        *args: str,
        name: str = "worker",
        app: str = "config",
        env: dict[str, str] | None = None,
        **extra: str,
    ) -> RealProcess:
        """A worker on ``env`` (default: the fixture's) plus ``extra``."""
        worker_env = {**(env if env is not None else self.env), **extra}
        return self._keep(start_worker(worker_env, self._log(name), *args, app=app))

    def beat(
        self, name: str = "beat", env: dict[str, str] | None = None, **extra: str
    ) -> RealProcess:
        beat_env = {**(env if env is not None else self.env), **extra}
        return self._keep(start_beat(beat_env, self._log(name)))

    def web(
        self, name: str = "web", app: str = "config.wsgi", workers: int = 1, **extra: str
    ) -> RealProcess:
        env = {**self.env, **extra}
        return self._keep(start_web(env, self._log(name), app=app, workers=workers))

    def configured_web(self, name: str = "web", workers: int = 2, **extra: str) -> RealProcess:
        return self._keep(start_configured_web({**self.env, **extra}, self._log(name), workers))

    def serve(
        self,
        name: str = "serve",
        port: int = 0,
        workers: int = 2,
        env: dict[str, str] | None = None,
        **extra: str,
    ) -> RealProcess:
        serve_env = {**(env if env is not None else self.env), **extra}
        return self._keep(start_serve(serve_env, self._log(name), port=port, workers=workers))

    def close(self) -> None:
        """Kill what still runs (nothing is checked after the test) and keep the logs."""
        for started in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started.pid, signal.SIGKILL)  # the group: no child outlives it
            started.process.wait()
        ARTIFACT_DIR.mkdir(exist_ok=True)
        stamp = int(time.time() * 1000)
        for log in {started.log for started in self.started}:
            if log.exists():
                shutil.copy(log, ARTIFACT_DIR / f"{self.label}-{stamp}-{log.name}")
