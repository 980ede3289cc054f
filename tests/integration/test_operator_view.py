"""The operator's view on real processes: a gunicorn web server with two workers
(config/gunicorn_web.py, LOG_FORMAT=json) and a Celery worker exposing its job
metrics (WORKER_METRICS_PORT), on PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
from collections import Counter
from pathlib import Path

import pytest
from knox.models import AuthToken
from prometheus_client.parser import text_string_to_metric_families

from common.models import AuditEvent
from registry.models import RegistrationJob
from tests.conftest import register, wait_for
from tests.processes import free_port

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read()


def samples(body: bytes) -> dict[tuple[str, frozenset], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def json_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
    return lines


@pytest.fixture
def web(real_processes):
    """The web process type as deployed (config/gunicorn_web.py), two workers, JSON logs."""
    return real_processes.configured_web(workers=2)


def test_metrics_sum_both_gunicorn_workers_and_each_request_is_one_json_line(web, personas):
    calls = 0

    def hit(n: int) -> None:
        for _ in range(n):
            assert get(web.port, "/healthz")[0] == 200  # a new connection each time

    def pids_served() -> set[int]:
        return {
            line["pid"]
            for line in json_lines(web.output())
            if line.get("logger") == "modelgate.request" and line["path"] == "/healthz"
        }

    # Which sync worker accepts a connection is the kernel's choice: a quick endpoint
    # may all land on one. Rounds of concurrent requests until both have served some
    # (bounded), so that the sum below is over two workers' files.
    for _round in range(20):
        threads = [threading.Thread(target=hit, args=(10,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        calls += 60
        if len(pids_served()) == 2:
            break

    # An audited write through the API, with the caller's own request id.
    _, token = AuthToken.objects.create(personas.owner)
    connection = web.connection()
    connection.request(
        "POST",
        "/api/v1/models/",
        body=json.dumps({"name": "churn", "task": "classification", "risk_tier": "low"}),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Token {token}",
            "X-Request-ID": "pipeline-run-4711",
        },
    )
    response = connection.getresponse()
    assert response.status == 201, response.read()

    status, body = get(web.port, "/metrics")
    assert status == 200
    figures = samples(body)
    healthz = frozenset({"family": "healthz", "method": "GET", "status": "2xx"}.items())
    # Each worker counted its own requests in its own file; /metrics sums them.
    # (+1: start_web's own readiness probes are counted too, hence the lower bound.)
    assert figures[("modelgate_http_requests_total", healthz)] >= calls
    files = list(Path(web.env["PROMETHEUS_MULTIPROC_DIR"]).glob("counter_*.db"))
    assert len(files) == 2, files

    lines = [line for line in json_lines(web.output()) if line.get("logger") == "modelgate.request"]
    served = [line for line in lines if line["path"] == "/healthz"]
    assert len(served) == figures[("modelgate_http_requests_total", healthz)]
    by_worker = Counter(line["pid"] for line in served)
    assert len(by_worker) == 2 and set(by_worker) == set(web.worker_pids()), by_worker

    (write,) = [line for line in lines if line["path"] == "/api/v1/models/"]
    event = AuditEvent.objects.get(action="registry.model.created")
    assert write["request_id"] == event.request_id == "pipeline-run-4711"
    assert write["method"] == "POST" and write["status"] == 201 and write["user"] == "owner"
    assert write["duration_ms"] > 0

    # Not for a caller behind a proxy, even one on this host.
    assert get(web.port, "/metrics", {"X-Forwarded-For": "203.0.113.9"})[0] == 404
    status, body = get(web.port, "/readyz")
    assert status == 200 and json.loads(body)["checks"]["broker"] == "ok"


def test_a_worker_serves_its_job_metrics_and_the_web_counts_jobs_by_state(
    web, real_processes, tmp_path, model, personas
):
    port = free_port()
    real_processes.worker(
        WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus-worker"),
    )
    job = register(model, personas.bot).registration_job
    wait_for(
        lambda: RegistrationJob.objects.get(pk=job.pk).status == "succeeded",
        message="the registration job to succeed",
    )
    kind = "RegistrationJob"
    done = frozenset({"kind": kind, "outcome": "succeeded"}.items())
    # The runner counts a job once its service has returned (after the commit that
    # marked it succeeded, and after its heartbeat thread has stopped).
    figures = wait_for(
        lambda: (
            (f := samples(get(port, "/metrics")[1])).get(("modelgate_jobs_finished_total", done))
            and f
        ),
        timeout=10,
        message="the worker to count the finished job",
    )
    assert figures[("modelgate_jobs_finished_total", done)] == 1
    assert figures[("modelgate_job_duration_seconds_count", done)] == 1
    waited = frozenset({"kind": kind}.items())
    assert figures[("modelgate_job_queue_wait_seconds_count", waited)] == 1

    web_figures = samples(get(web.port, "/metrics")[1])
    state = frozenset({"kind": kind, "state": "succeeded"}.items())
    assert web_figures[("modelgate_jobs", state)] == 1
    assert os.path.isdir(tmp_path / "prometheus-worker")
