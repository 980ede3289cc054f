"""PostgreSQL, with Django's per-request health check skipped on a warm connection.

Django's ``CONN_HEALTH_CHECKS`` probes a persistent connection (``SELECT 1``)
before the first query of every request. On a busy API process that is one
extra round trip per request on a connection that answered a query moments
ago; for alias resolution, the serving hot path, it was a third of the
database time. Here the probe runs only when the connection has been idle for
longer than ``HEALTH_CHECK_IDLE_SECONDS`` (``DB_HEALTH_CHECK_IDLE_SECONDS``,
default 1): the quiet periods in which a server restart or an idle timeout
could have gone unnoticed. A connection that fails mid-request is still probed
and dropped at the end of that request by Django itself (``errors_occurred``).
"""

from __future__ import annotations

import math
import time

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    _last_cursor_at = -math.inf

    def close_if_health_check_failed(self) -> None:
        now = time.monotonic()
        last, self._last_cursor_at = self._last_cursor_at, now
        idle_limit = float(self.settings_dict.get("HEALTH_CHECK_IDLE_SECONDS", 0))
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and now - last < idle_limit
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
