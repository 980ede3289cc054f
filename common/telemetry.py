"""The operator's view: Prometheus metrics, readiness, and the per-request log line.

Metrics (prometheus-client; the text format at ``/metrics``):

- ``modelgate_http_requests_total{family, method, status}`` and
  ``modelgate_http_request_duration_seconds{family}`` (histogram), recorded by
  ``RequestTelemetryMiddleware``. The family is the URL pattern's name
  (``api:registeredmodel-list``, ``model-detail``), ``static`` or ``unmatched``:
  it comes from the URL configuration, never from the path, so a caller cannot
  create label values. The status is the class (``2xx`` .. ``5xx``).
- ``modelgate_job_queue_wait_seconds{kind}`` (claim time minus the time the
  job became due), ``modelgate_job_duration_seconds{kind, outcome}`` and
  ``modelgate_jobs_finished_total{kind, outcome}``, recorded by the job runner
  (``common.jobs.job_run``) in the worker process that ran the job;
  ``modelgate_job_sweep_total{action}`` (requeued, failed, resent) by the sweep;
  ``modelgate_alerts_opened_total{kind}`` where an alert is opened.
- ``modelgate_jobs{kind, state}``: a gauge read from the database at each
  scrape (every host's jobs, whichever process scrapes).

Under gunicorn each worker process writes its own files in
PROMETHEUS_MULTIPROC_DIR (set before the first import of prometheus-client:
config/gunicorn_web.py, config/gunicorn_serve.py, and the Celery worker when
it is given one) and ``/metrics`` sums them; without it the figures are this
process's own.

Access: ``/metrics`` answers a request with ``Authorization: Bearer
<METRICS_TOKEN>`` when that setting is set; otherwise only a direct request from
an address in METRICS_ALLOWED_IPS (loopback by default) that carries no
``X-Forwarded-For`` (a request relayed by a proxy on the same host is not a
local one). Anyone else gets a 404, so the endpoint cannot leak through a load
balancer by default.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger("modelgate.request")

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

HTTP_REQUESTS = Counter(
    "modelgate_http_requests",
    "Requests answered by the web process, by endpoint family, method and status class",
    ["family", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "modelgate_http_request_duration_seconds",
    "Time to answer a request of the web process, by endpoint family",
    ["family"],
    buckets=HTTP_BUCKETS,
)
JOB_QUEUE_WAIT = Histogram(
    "modelgate_job_queue_wait_seconds",
    "Time from a job becoming due (queued, or its retry's backoff over) to a worker claiming it",
    ["kind"],
    buckets=JOB_BUCKETS,
)
JOB_DURATION = Histogram(
    "modelgate_job_duration_seconds",
    "Time a worker spent on one attempt of a job, by outcome",
    ["kind", "outcome"],
    buckets=JOB_BUCKETS,
)
JOBS_FINISHED = Counter(
    "modelgate_jobs_finished",
    "Job attempts ended, by kind and outcome (succeeded, failed, retried, lost)",
    ["kind", "outcome"],
)
SWEEP_ACTIONS = Counter(
    "modelgate_job_sweep",
    "Jobs the stale-job sweep acted on: requeued (worker dead), failed, resent (message lost)",
    ["action"],
)
ALERTS_OPENED = Counter("modelgate_alerts_opened", "Monitoring alerts opened, by kind", ["kind"])

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def job_kind(model: type) -> str:
    return model.__name__


def alert_opened(kind: str) -> None:
    ALERTS_OPENED.labels(kind).inc()


# --- the scrape ---------------------------------------------------------------------------


class JobStateCollector(Collector):
    """``modelgate_jobs{kind, state}``: the job tables' rows by status, at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError
        from django.db.models import Count

        from common.jobs import job_models
        from common.models import JobStatus

        family = GaugeMetricFamily(
            "modelgate_jobs",
            "Background jobs by kind and state (from the database)",
            labels=["kind", "state"],
        )
        try:
            for model in job_models():
                counts = dict.fromkeys(JobStatus.values, 0)
                rows = model._default_manager.values_list("status").annotate(n=Count("pk"))
                for status, n in rows.order_by():
                    counts[status] = n
                for status, n in counts.items():
                    family.add_metric([job_kind(model), status], n)
        except DatabaseError:
            # The rest of the scrape still answers; /readyz says what is down.
            logger.warning("metrics: job counts unavailable", exc_info=True)
            return
        yield family


def metrics_registry(*, with_jobs: bool) -> CollectorRegistry:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
    elif not with_jobs:
        return REGISTRY
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if with_jobs:
        registry.register(JobStateCollector())
    return registry


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        return self.registry.collect()


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        supplied = request.headers.get("Authorization", "")
        return hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode())
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    return request.META.get("REMOTE_ADDR", "") in settings.METRICS_ALLOWED_IPS


def metrics_response(request: HttpRequest, *, with_jobs: bool) -> HttpResponse:
    if not metrics_allowed(request):
        from common.api import error_body

        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    registry = metrics_registry(with_jobs=with_jobs)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``/metrics`` of the web process: requests, jobs, sweeps, alerts (see the module doc)."""
    return metrics_response(request, with_jobs=True)


# --- readiness ------------------------------------------------------------------------------


def _check_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    from celery import current_app

    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.READYZ_TIMEOUT_SECONDS)


def _check_storage() -> None:
    from django.core.files.storage import storages

    for name in settings.STORAGES:
        if name != "staticfiles":
            storages[name].exists("readyz-probe")


READINESS_CHECKS: dict[str, Callable[[], None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "storage": _check_storage,
}


def readiness() -> dict[str, str]:
    """Each dependency's answer: "ok" or "failed" (the error itself is logged, not shown)."""
    results = {}
    for name, check in READINESS_CHECKS.items():
        try:
            check()
        except Exception:
            logger.exception("readiness check %s failed", name)
            results[name] = "failed"
        else:
            results[name] = "ok"
    return results


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when the database, the broker and the storage answer, else 503."""
    checks = readiness()
    failed = sorted(name for name, result in checks.items() if result != "ok")
    if not failed:
        return JsonResponse({"status": "ready", "checks": checks})
    from common.api import error_body

    body = error_body(
        "not_ready", f"Not ready: {', '.join(failed)} did not answer.", {"checks": checks}
    )
    return JsonResponse(body, status=503)


# --- the request middleware -------------------------------------------------------------------


def endpoint_family(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name:
        return match.view_name  # "namespace:name": from the URL configuration only
    if request.path.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


class RequestTelemetryMiddleware:
    """Counts and times every request by endpoint family, and logs one line for it.

    The line (logger ``modelgate.request``) carries the method, path, status,
    duration, user and request id as record attributes: with LOG_FORMAT=json
    each is a field of a JSON line (``common.telemetry.JsonFormatter``), and the
    request id is the one the audit trail records (``AuditEvent.request_id``) and
    the response's ``X-Request-ID``. Placed inside ``RequestIdMiddleware``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - start
        family = endpoint_family(request)
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(family, method, f"{response.status_code // 100}xx").inc()
        HTTP_LATENCY.labels(family).observe(seconds)
        user = getattr(request, "user", None)
        username = user.get_username() if user is not None and user.is_authenticated else ""
        logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "user": username,
                "family": family,
                "request_id": getattr(request, "request_id", ""),
            },
        )
        return response


# --- JSON log lines -------------------------------------------------------------------------

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, pid, the request id in
    context (``common.context``), any ``extra`` fields, and the traceback if any."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        from common.context import current_request_id

        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = current_request_id()
        if request_id:
            payload["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)
