"""Test-only fault injection: kill a real process at a chosen point.

Tests that prove a crash is survivable (a retry after a lost answer, a job
whose message was never sent) start a real process with::

    MODELGATE_FAULT="<point>:<prefix>[,<point>:<prefix>...]"

and the process SIGKILLs itself when it reaches ``<point>`` while handling
something whose name starts with ``<prefix>`` (a request path, a task name).
The variable is read only with DEBUG on (``settings.MODELGATE_FAULT``), so a
production process (DEBUG off) never honours it; unset, nothing here runs.

Points:

``kill_after_commit``
    A web request whose path starts with the prefix: after the view returned
    (its transactions committed, their on-commit work done) and before the
    response is sent (``FaultInjectionMiddleware``, installed only when the
    variable is set). The client sees the connection close with no answer.

Other code names its own points with ``fault_point("name", where)``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from django.conf import settings


def _armed(point: str, where: str) -> bool:
    for spec in filter(None, (s.strip() for s in settings.MODELGATE_FAULT.split(","))):
        name, _, prefix = spec.partition(":")
        if name == point and where.startswith(prefix):
            return True
    return False


def fault_point(point: str, where: str) -> None:
    """Die here, at once and without cleanup, when the fault is armed for ``where``."""
    if settings.MODELGATE_FAULT and _armed(point, where):
        os.kill(os.getpid(), signal.SIGKILL)


class FaultInjectionMiddleware:
    """Outermost middleware (added by settings only when MODELGATE_FAULT is set)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        fault_point("kill_after_commit", request.path)
        return response
