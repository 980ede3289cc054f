"""`make run`'s process runner: web, serve, worker and beat in one terminal.

    python -m config.run [--host H] [--port P] [--serve-port S] [--web-workers N] ...

Why not ``trap 'kill 0' INT TERM EXIT`` in the shell (what ``make run`` did): ``kill 0``
sends SIGTERM to the whole group, the shell included, so the trap runs again inside
itself, recursively, until bash overflows its stack ("make: *** [run] Segmentation
fault"); each round signals every process again: celery printed "Warm shutdown" two
thousand times, its pool children died of SIGTERM under it, and the worker was left
behind stuck in its warm shutdown after ``make`` had exited. And a terminal's Ctrl-C
alone already reaches every process of the group at once (celery's pool children,
gunicorn's workers) instead of letting each main process stop its own.

Here each process type runs in a session (and process group) of its own, so a
Ctrl-C or a SIGTERM sent to ``make``'s group reaches only this runner. It then
stops them once each: SIGTERM to each main process (gunicorn: graceful stop;
celery worker: warm shutdown; beat: exit), which stops its own workers; waits up to
``--stop-timeout`` seconds, sends the worker SIGQUIT (cold shutdown: a running task
is not acknowledged and is delivered again later, the job row requeued by the
stale-job sweep), and SIGKILLs any group still alive after ``--kill-after`` more
seconds. If one process dies on
its own (a port in use, a crash), the others are stopped the same way and the
runner exits non-zero.

Every output line is prefixed with the process type.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Sent after the stop timeout, before SIGKILL (celery: cold shutdown).
    second_signal: int | None = None
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = None


class Runner:
    def __init__(self, children: list[Child], *, stop_timeout: float, kill_after: float) -> None:
        self.children = children
        self.stop_timeout = stop_timeout
        self.kill_after = kill_after
        self.stopping = threading.Event()
        self.output_lock = threading.Lock()
        self.width = max(len(c.name) for c in children)

    def say(self, name: str, line: str) -> None:
        with self.output_lock:
            sys.stdout.write(f"{name:<{self.width}} | {line}\n")
            sys.stdout.flush()

    def _pump(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            self.say(child.name, raw.decode("utf-8", "replace").rstrip("\n"))
        child.process.stdout.close()

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(  # noqa: S603 - our own fixed command lines
                child.argv,
                cwd=ROOT,
                env={**os.environ, **child.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals come from us only
            )
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()
            self.say("run", f"started {child.name} (pid {child.process.pid})")

    def alive(self) -> list[Child]:
        return [c for c in self.children if c.process and c.process.poll() is None]

    def _signal(self, child: Child, sig: int) -> None:
        """Signal the process type's main process only: gunicorn's master and celery's
        MainProcess stop their own workers in order. A signal sent to their workers too
        (what a terminal's Ctrl-C does to one shared group) kills celery's pool children
        under a warm shutdown that then waits for them forever, and interrupts gunicorn
        workers in the middle of their exit hooks."""
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.process.pid, sig)

    def _signal_group(self, child: Child, sig: int) -> None:
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, sig)

    def _wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self, reason: str) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.say("run", f"{reason}: stopping {', '.join(c.name for c in self.alive())}")
        for child in self.alive():
            self._signal(child, signal.SIGTERM)
        self._wait(self.stop_timeout)
        for child in self.alive():
            if child.second_signal is not None:
                self.say("run", f"{child.name} still busy after {self.stop_timeout:g} s: cold stop")
                self._signal(child, child.second_signal)
        self._wait(self.kill_after)
        for child in self.alive():
            self.say("run", f"{child.name} did not stop: killing it")
            self._signal_group(child, signal.SIGKILL)
        for child in self.children:
            if child.process is not None:
                child.process.wait()
                # Children of a process that died first (a prefork pool) go with their group.
                self._signal_group(child, signal.SIGKILL)
            if child.reader is not None:
                child.reader.join(timeout=2)
        self.say("run", "all stopped")

    def watch(self) -> int:
        """Block until a signal or a child's exit; stop everything; the exit status."""
        received: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            received.append(signum)

        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, on_signal) for sig in handled}
        try:
            self.start()
            while not received:
                dead = [c for c in self.children if c.process and c.process.poll() is not None]
                if dead:
                    child = dead[0]
                    self.stop(f"{child.name} exited with status {child.process.returncode}")
                    return 1
                time.sleep(0.2)
            # Further Ctrl-Cs while stopping change nothing: the stop is already bounded.
            for sig in handled:
                signal.signal(sig, signal.SIG_IGN)
            self.stop(f"{signal.Signals(received[0]).name} received")
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def wait_until_up(runner: Runner, url: str, banner: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not runner.stopping.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - an http:// URL we built
                runner.say("run", banner)
                return
        except OSError:
            time.sleep(0.3)


def build_children(
    *,
    host: str,
    port: int,
    serve_port: int,
    web_workers: int = 3,
    serve_workers: int = 2,
    concurrency: int = 2,
) -> list[Child]:
    """The four process types (web, serve, worker, beat); also used by ``manage.py loop``."""
    python = sys.executable
    bin_dir = Path(python).parent
    var = Path(os.environ.get("VAR_DIR") or ROOT / "var")
    return [
        Child(
            "web",
            [
                str(bin_dir / "gunicorn"),
                "-c",
                "config/gunicorn_web.py",  # metrics shared between workers
                "config.wsgi",
                "-b",
                f"{host}:{port}",
                "-w",
                str(web_workers),
                "--access-logfile",
                "-",
                # gunicorn's control socket defaults to one path per user
                # ($HOME/.gunicorn/gunicorn.ctl): web and serve would fight over it.
                "--no-control-socket",
            ],
        ),
        Child(
            "serve",
            [str(bin_dir / "gunicorn"), "-c", "config/gunicorn_serve.py", "config.wsgi"],
            env={
                "SERVE_HOST": host,
                "SERVE_PORT": str(serve_port),
                "SERVE_WORKERS": str(serve_workers),
            },
        ),
        Child(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "quick,heavy",
                "--concurrency",
                str(concurrency),
                "-l",
                "info",
            ],
            second_signal=signal.SIGQUIT,
        ),
        Child(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "info",
                "--schedule",
                str(var / "celerybeat-schedule"),
            ],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--serve-port", type=int, default=int(os.environ.get("SERVE_PORT", "8001")))
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--serve-workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker processes")
    parser.add_argument("--stop-timeout", type=float, default=10.0)
    parser.add_argument("--kill-after", type=float, default=5.0)
    args = parser.parse_args(argv)

    web = f"http://{args.host}:{args.port}"
    serve = f"http://{args.host}:{args.serve_port}"
    children = build_children(
        host=args.host,
        port=args.port,
        serve_port=args.serve_port,
        web_workers=args.web_workers,
        serve_workers=args.serve_workers,
        concurrency=args.concurrency,
    )
    runner = Runner(children, stop_timeout=args.stop_timeout, kill_after=args.kill_after)
    runner.say(
        "run",
        f"Starting web ({web}), serve ({serve}/serve/<model>/<environment>/invocations), "
        "worker and beat. Ctrl-C stops all four.",
    )
    threading.Thread(
        target=wait_until_up,
        args=(runner, f"{web}/healthz", f"ModelGate is up: open {web}/ (log in as a demo persona)"),
        daemon=True,
    ).start()
    return runner.watch()


if __name__ == "__main__":
    sys.exit(main())
