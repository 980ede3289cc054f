"""Serving metrics for operators, in the Prometheus text format at ``/metrics``.

Per model, environment and version: requests by HTTP status (errors are the
non-200 ones) and a latency histogram; requests refused before routing
(no or bad token, unknown model) by status only, so that a caller cannot
create label values; and the prediction log's rows (logged, handed off,
dropped). Under gunicorn every worker process writes its own files in
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode: set before
the first import, cleaned when the server starts, see config/gunicorn_serve.py)
and ``/metrics`` sums them; without it the figures are this process's.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

from common.telemetry import metrics_response

LABELS = ("model", "environment", "version")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

REQUESTS = Counter(
    "modelgate_serving_requests",
    "Prediction requests answered, by model, environment, version and HTTP status",
    [*LABELS, "status"],
)
LATENCY = Histogram(
    "modelgate_serving_request_duration_seconds",
    "Time to answer a prediction request (parsing, validation, prediction, logging)",
    LABELS,
    buckets=BUCKETS,
)
REJECTED = Counter(
    "modelgate_serving_rejected",
    "Requests refused before routing (authentication, unknown model or environment)",
    ["status"],
)
LOG_ROWS = Counter("modelgate_serving_log_rows", "Prediction log rows recorded")
LOG_HANDED_OFF = Counter(
    "modelgate_serving_log_rows_handed_off", "Prediction log rows handed to the broker"
)
LOG_DROPPED = Counter(
    "modelgate_serving_log_rows_dropped", "Prediction log rows dropped (broker unreachable)"
)
LOG_FLUSH_FAILURES = Counter(
    "modelgate_serving_log_flush_failures", "Hand-offs of the prediction log that failed"
)


def observe(model: str, environment: str, version: int | None, status: int, seconds: float) -> None:
    labels = (model, environment, str(version))
    REQUESTS.labels(*labels, str(status)).inc()
    LATENCY.labels(*labels).observe(seconds)


def rejected(status: int) -> None:
    REJECTED.labels(str(status)).inc()


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``/metrics`` of the serving process (same access rule as the web's: common.telemetry)."""
    return metrics_response(request, with_jobs=False)
