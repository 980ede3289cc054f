"""Domain events, delivered after the transaction that caused them commits.

A service that changes something other apps may care about (a review moved, an
alert opened, a deployment finished) calls ``publish_event`` inside its
transaction; listeners registered in an ``AppConfig.ready`` (governance's
webhooks, for instance) are called only once the change is durable, so a
rolled-back change never notifies anyone. Listeners must be quick and must not
raise: anything slow (HTTP, email) is queued as a job by the listener.

Signals are deliberately not used: the publisher names the event and its
payload explicitly, and the payload is plain JSON (it may end up in a webhook).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from common.audit import to_plain_json

logger = logging.getLogger(__name__)

EventListener = Callable[[str, dict[str, Any]], None]
_listeners: list[EventListener] = []


def register_event_listener(listener: EventListener) -> EventListener:
    """Register ``listener(name, payload)`` for every event; usable as a decorator."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def publish_event(name: str, payload: dict[str, Any]) -> None:
    """Deliver ``name`` (e.g. ``"monitoring.alert.opened"``) after commit."""
    plain = to_plain_json(payload)

    def deliver() -> None:
        for listener in list(_listeners):
            try:
                listener(name, plain)
            except Exception:  # one broken listener must not hide the event from others
                logger.exception("event listener %r failed on %s", listener, name)

    transaction.on_commit(deliver)
