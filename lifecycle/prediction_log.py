"""Prediction logging, the serving process's half: buffer, then hand off in batches.

A served request appends its rows to an in-process buffer (a list append
under a lock: nothing on the request path waits for a disk, a broker or the
database). A flusher thread hands the buffer to the broker every
SERVE_LOG_FLUSH_SECONDS (1 s), or sooner when SERVE_LOG_FLUSH_ROWS are
waiting, as one small JSON message per (environment, version, caller) with a
deterministic batch id (``serve-<process token>-<sequence>``); a worker writes
each as a monitoring ``PredictionBatch`` (the successful rows) and a
``ServingLogBatch`` (every row, errors included), and a redelivered message
is not counted twice (``lifecycle.serving_logs``).

A clean stop (SIGTERM: gunicorn's ``worker_exit`` hook calls ``shutdown``)
flushes what is left, so nothing logged is lost; a SIGKILL loses at most the
rows of the last interval. While the broker is unreachable the messages wait
in the process (their batch ids kept) up to SERVE_LOG_MAX_BUFFERED_ROWS rows;
beyond that the oldest are dropped and counted in
``modelgate_serving_log_rows_dropped_total``.

Rows: the request id (``<id>`` for a one-row request, ``<id>:<i>`` for row i
of a larger one, which is what a label batch joins on), the time, the
features, the prediction and the positive-class probability, the version,
the latency, the HTTP status and, for a refused request, its error code and
column, and the shadow flag.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from lifecycle import metrics

logger = logging.getLogger(__name__)

TASK = "lifecycle.tasks.serving_log_ingest"


@dataclass
class _Group:
    ok_request_id: list[str] = field(default_factory=list)
    ok_at: list[float] = field(default_factory=list)
    ok_latency_ms: list[float] = field(default_factory=list)
    ok_shadow: list[bool] = field(default_factory=list)
    prediction: list[Any] = field(default_factory=list)
    probability: list[Any] = field(default_factory=list)
    features: dict[str, list[Any]] = field(default_factory=dict)
    err_request_id: list[str] = field(default_factory=list)
    err_at: list[float] = field(default_factory=list)
    err_latency_ms: list[float] = field(default_factory=list)
    err_shadow: list[bool] = field(default_factory=list)
    err_status: list[int] = field(default_factory=list)
    err_code: list[str] = field(default_factory=list)
    err_column: list[str] = field(default_factory=list)
    ok_requests: int = 0

    @property
    def rows(self) -> int:
        return len(self.ok_request_id) + len(self.err_request_id)


class PredictionLog:
    def __init__(self) -> None:
        self.token = secrets.token_hex(6)
        self._groups: dict[tuple[int, int, int | None], _Group] = {}
        self._rows = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._pending: deque[dict[str, Any]] = deque()  # built messages the broker refused
        self._pending_rows = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.sender: Any = None  # (task name, message) -> None; the Celery app by default

    # --- the request path ---------------------------------------------------------

    def _group(self, key: tuple[int, int, int | None]) -> _Group:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        return group

    def record(
        self,
        *,
        environment_id: int,
        version_id: int,
        user_id: int | None,
        request_id: str,
        latency: float,
        features: dict[str, Any],
        predictions: list[Any],
        probability: Any = None,
        shadow: bool = False,
    ) -> None:
        n = len(predictions)
        ids = [request_id] if n == 1 else [f"{request_id}:{i}" for i in range(n)]
        now = time.time()
        columns = {name: values.tolist() for name, values in features.items()}
        probs = probability.tolist() if probability is not None else [None] * n
        with self._lock:
            group = self._group((environment_id, version_id, user_id))
            before = len(group.ok_request_id)
            group.ok_request_id.extend(ids)
            group.ok_at.extend([now] * n)
            group.ok_latency_ms.extend([latency * 1000.0] * n)
            group.ok_shadow.extend([shadow] * n)
            group.ok_requests += 1
            group.prediction.extend(predictions)
            group.probability.extend(probs)
            for name, values in columns.items():
                column = group.features.get(name)
                if column is None:
                    column = group.features[name] = [None] * before
                column.extend(values)
            self._rows += n
            full = self._rows >= settings.SERVE_LOG_FLUSH_ROWS
        metrics.LOG_ROWS.inc(n)
        if full:
            self._wake.set()

    def record_error(
        self,
        *,
        environment_id: int,
        version_id: int,
        user_id: int | None,
        request_id: str,
        latency: float,
        status: int,
        code: str,
        column: str = "",
        shadow: bool = False,
    ) -> None:
        with self._lock:
            group = self._group((environment_id, version_id, user_id))
            group.err_request_id.append(request_id)
            group.err_at.append(time.time())
            group.err_latency_ms.append(latency * 1000.0)
            group.err_shadow.append(shadow)
            group.err_status.append(status)
            group.err_code.append(code)
            group.err_column.append(column[:200])
            self._rows += 1
        metrics.LOG_ROWS.inc()

    # --- the hand-off -------------------------------------------------------------

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            groups, self._groups, self._rows = self._groups, {}, 0
            messages = []
            for (environment_id, version_id, user_id), group in groups.items():
                self._seq += 1
                messages.append(
                    {
                        "batch_id": f"serve-{self.token}-{self._seq}",
                        "environment_id": environment_id,
                        "version_id": version_id,
                        "user_id": user_id,
                        "ok": {
                            "request_id": group.ok_request_id,
                            "at": group.ok_at,
                            "latency_ms": group.ok_latency_ms,
                            "shadow": group.ok_shadow,
                            "prediction": group.prediction,
                            "probability": group.probability,
                            "features": group.features,
                        },
                        "errors": {
                            "request_id": group.err_request_id,
                            "at": group.err_at,
                            "latency_ms": group.err_latency_ms,
                            "shadow": group.err_shadow,
                            "status": group.err_status,
                            "code": group.err_code,
                            "column": group.err_column,
                        },
                        "rows": group.rows,
                        "ok_requests": group.ok_requests,
                    }
                )
        return messages

    def _send(self, message: dict[str, Any]) -> None:
        if self.sender is not None:
            self.sender(TASK, message)
            return
        from config.celery import app

        app.send_task(TASK, args=[message])

    def flush(self) -> int:
        """Hand every buffered row to the broker; returns the rows handed off."""
        with self._flush_lock:
            fresh = self._take()
            self._pending.extend(fresh)
            self._pending_rows += sum(m["rows"] for m in fresh)
            sent = 0
            while self._pending:
                message = self._pending[0]
                try:
                    self._send(message)
                except Exception:
                    metrics.LOG_FLUSH_FAILURES.inc()
                    logger.warning(
                        "prediction log: the broker refused a batch; %s rows wait",
                        self._pending_rows,
                        exc_info=True,
                    )
                    break
                self._pending.popleft()
                self._pending_rows -= message["rows"]
                sent += message["rows"]
            while self._pending_rows > settings.SERVE_LOG_MAX_BUFFERED_ROWS and self._pending:
                dropped = self._pending.popleft()
                self._pending_rows -= dropped["rows"]
                metrics.LOG_DROPPED.inc(dropped["rows"])
                logger.error("prediction log: dropped %s rows (broker down)", dropped["rows"])
            if sent:
                metrics.LOG_HANDED_OFF.inc(sent)
            return sent

    def waiting(self) -> int:
        return self._rows + self._pending_rows

    # --- the flusher thread -------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        interval = settings.SERVE_LOG_FLUSH_SECONDS
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                logger.exception("prediction log: flush failed")

    def shutdown(self, timeout: float = 20.0) -> int:
        """Stop the thread and hand off everything left (a clean stop loses nothing)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        deadline = time.monotonic() + timeout
        self.flush()
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.2)
            self.flush()
        if self._pending_rows:
            logger.error("prediction log: %s rows could not be handed off", self._pending_rows)
        return self._pending_rows


LOG = PredictionLog()


def record(**row: Any) -> None:
    if settings.SERVE_LOG_ENABLED:
        LOG.record(**row)


def record_error(**row: Any) -> None:
    if settings.SERVE_LOG_ENABLED:
        LOG.record_error(**row)
