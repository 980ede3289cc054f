"""`make loop`: the lifecycle scenario against the real processes (see demo/loop.py).

Loads the demo (idempotent), starts web, serve, worker and beat (config.run's process
list, their output in ``$VAR_DIR/loop-processes.log``), plays both rounds, prints the
timeline and the audit chain's verification, stops the processes, and exits non-zero
if a step did not reach its outcome. With ``--signoffs external`` the personas sign in
the web UI (the loop prints where, and waits); with ``--hold`` the processes stay up
after the scenario until Enter (or the end of the input). Intervals shortened for the
loop are set in the environment (``demo.loop.LOOP_ENVIRONMENT``) unless already set.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from demo import loop


class Command(BaseCommand):
    help = "Run the lifecycle scenario (both rounds) against real processes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("LOOP_PORT", 8010)))
        parser.add_argument(
            "--serve-port", type=int, default=int(os.environ.get("LOOP_SERVE_PORT", 8011))
        )
        parser.add_argument("--rows", type=int, default=1500, help="drifted rows sent")
        parser.add_argument("--step-seconds", type=float, default=20.0, help="canary step")
        parser.add_argument("--timeout", type=float, default=240.0, help="per step")
        parser.add_argument(
            "--signoffs",
            choices=loop.SIGNOFF_MODES,
            default="services",
            help="services: the loop signs for the personas (printed 'a person signs here'); "
            "external: it prints who signs which review where, and waits for the personas "
            "to sign in the web UI",
        )
        parser.add_argument(
            "--signoff-timeout",
            type=float,
            default=900.0,
            help="with --signoffs external: how long to wait for a review's sign-offs",
        )
        parser.add_argument(
            "--hold",
            action="store_true",
            help="after the scenario, keep the processes running (to look at the outcome in "
            "the web UI) until Enter or the end of the input",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from config.run import Runner, build_children

        started = time.monotonic()
        loop.environment_defaults()
        # The demo's and the scenario's notification emails are not the story here.
        settings.EMAIL_BACKEND = os.environ["EMAIL_BACKEND"]
        self.stdout.write("Loading the demo (personas, models, policies, environments)...")
        call_command("migrate", verbosity=0, interactive=False)
        call_command("demo", stdout=io.StringIO())
        log_path = Path(settings.VAR_DIR) / "loop-processes.log"
        log = log_path.open("a", encoding="utf-8")

        class Quiet(Runner):
            def say(self, name: str, line: str) -> None:
                log.write(f"{name:<6} | {line}\n")
                log.flush()

        children = build_children(
            host=options["host"],
            port=options["port"],
            serve_port=options["serve_port"],
            web_workers=2,
            serve_workers=1,
            concurrency=2,
        )
        runner = Quiet(children, stop_timeout=10, kill_after=5)
        self.stdout.write(f"Starting web, serve, worker and beat (their output: {log_path})...")
        # A SIGTERM stops the scenario like a Ctrl-C: the processes are stopped below.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        runner.start()
        scenario = loop.Scenario(
            out=self.stdout,
            host=options["host"],
            port=options["port"],
            serve_port=options["serve_port"],
            rows=options["rows"],
            step_seconds=options["step_seconds"],
            timeout=options["timeout"],
            signoffs=options["signoffs"],
            signoff_timeout=options["signoff_timeout"],
        )
        try:
            base = f"http://{options['host']}"
            loop.wait_http(f"{base}:{options['port']}/healthz")
            loop.wait_http(f"{base}:{options['serve_port']}/healthz")
            outcome = scenario.run()
            held = (
                self.hold(f"{base}:{options['port']}/models/{loop.MODEL}/")
                if options["hold"]
                else 0
            )
        except loop.LoopFailed as exc:
            scenario.timeline()
            raise CommandError(f"The loop stopped: {exc} (processes' log: {log_path})") from None
        finally:
            runner.stop("loop finished")
            log.close()
        wall = time.monotonic() - started - held
        self.stdout.write(
            f"Round one: {outcome['round_one']}; round two: {outcome['round_two']} "
            f"({outcome['round_two_reason']})"
        )
        self.stdout.write(
            f"Wall time: {wall:.0f} s (scenario {outcome['seconds']:.0f} s)"
            + (f"; then held {held:.0f} s" if options["hold"] else "")
        )

    def hold(self, url: str) -> float:
        """Keep the processes up until a line (Enter) or the end of the input; returns
        the seconds held. The browser test closes the input once it has looked."""
        self.stdout.write(
            f"The processes keep running: look at {url}, then press Enter (or close the "
            "input) to stop them."
        )
        self.stdout.flush()
        began = time.monotonic()
        sys.stdin.readline()
        return time.monotonic() - began
