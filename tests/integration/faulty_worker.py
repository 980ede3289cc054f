"""The project's Celery app for the job tests (``celery -A tests.integration.faulty_worker``),
with test-only faults in registration validation chosen by the worker's environment:

- ``SLOW_VALIDATION_SECONDS``: compute in pure Python for this long first (a job that
  outlives the shortened stale threshold, or one to kill mid-way);
- ``DIE_IN_VALIDATION``: the pool process SIGKILLs itself instead, every time (a job
  whose worker is OOM-killed on each attempt).

The faults sit inside the real service, so the claim, the heartbeat thread, the
outcome and the sweep are the production code paths.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from celery.signals import worker_process_init

from config.celery import app

__all__ = ["app"]


@worker_process_init.connect
def _install_faults(**kwargs: Any) -> None:
    from registry import services

    inspect = services._inspect

    def faulty_inspect(version: Any) -> Any:
        if os.environ.get("DIE_IN_VALIDATION"):
            os.kill(os.getpid(), signal.SIGKILL)
        deadline = time.monotonic() + float(os.environ.get("SLOW_VALIDATION_SECONDS") or 0)
        while time.monotonic() < deadline:  # holds the GIL but for the thread switches
            sum(range(1000))
        return inspect(version)

    services._inspect = faulty_inspect
