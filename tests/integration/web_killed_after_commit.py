"""A test-only WSGI entry point (``gunicorn tests.integration.web_killed_after_commit``):
the project's application in a web process that SIGKILLs itself right after a
transaction that queued a job has committed, before its on_commit callback hands the
job's id to the broker: the window in which a crash leaves a queued job that no
message will start."""

from __future__ import annotations

import os
import signal
from typing import Any

from config.wsgi import application  # sets Django up: import it first

__all__ = ["application"]


def _die_before_the_send(job: Any, countdown: int | None = None) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install() -> None:
    from common import jobs

    jobs._send = _die_before_the_send


_install()
