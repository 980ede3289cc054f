"""The operator's view in one process: /metrics (requests, jobs, sweep, alerts),
/readyz, and the JSON request log line joined to the audit trail by request id.

The same under a real gunicorn with two workers: tests/integration/test_operator_view.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from common import telemetry
from common.jobs import job_claim, job_finish, job_run, requeue_stale_jobs
from common.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import CheckRun, Monitor
from registry.models import RegistrationJob
from tests.conftest import client_for, ready_version, register
from tests.security.web_support import free_port

pytestmark = pytest.mark.django_db


def scrape(client: Any = None, **headers: str) -> dict[tuple[str, frozenset], float]:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_and_timed_by_endpoint_family_not_by_path(personas, model):
    client = client_for(personas.owner)
    before = scrape()
    for _ in range(3):
        assert client.get(f"/api/v1/models/{model.name}/").status_code == 200
    assert client.get("/api/v1/models/no-such-model/").status_code == 404
    assert client.get("/no/such/page/at/all").status_code == 404
    after = scrape()

    family = "api:model-detail"
    ok = dict(family=family, method="GET", status="2xx")
    missing = dict(family=family, method="GET", status="4xx")
    counter = "modelgate_http_requests_total"
    assert value(after, counter, **ok) - value(before, counter, **ok) == 3
    assert value(after, counter, **missing) - value(before, counter, **missing) == 1
    unmatched = dict(family="unmatched", method="GET", status="4xx")
    assert value(after, counter, **unmatched) - value(before, counter, **unmatched) == 1
    latency = "modelgate_http_request_duration_seconds_count"
    assert value(after, latency, family=family) - value(before, latency, family=family) == 4
    # No label value comes from the path itself: a caller cannot grow the series.
    paths = {dict(labels).get("family") for name, labels in after if name == counter}
    assert not any("no-such" in (p or "") or "/" in (p or "") for p in paths)


def test_jobs_by_kind_and_state_are_read_from_the_database(personas, model):
    register(model, personas.bot)
    samples = scrape()
    for status in ("queued", "running", "succeeded", "failed"):
        expected = RegistrationJob.objects.filter(status=status).count()
        assert value(samples, "modelgate_jobs", kind="RegistrationJob", state=status) == expected
    assert value(samples, "modelgate_jobs", kind="RegistrationJob", state="queued") >= 1


def test_a_database_outage_drops_the_job_counts_but_not_the_scrape(monkeypatch):
    from django.db import OperationalError

    def down():
        raise OperationalError("connection refused")
        yield  # a generator, like job_models

    monkeypatch.setattr("common.jobs.job_models", down)
    Client().get("/healthz")
    samples = scrape()
    assert not any(name == "modelgate_jobs" for name, _ in samples)
    assert any(name == "modelgate_http_requests_total" for name, _ in samples)


def _finish(*, job):
    from django.db import transaction

    with transaction.atomic():
        job_finish(job, log="done")


def _boom(*, job):
    raise RuntimeError("storage down")


def test_the_job_runner_records_queue_wait_duration_and_outcome(personas, model):
    job = register(model, personas.bot).registration_job
    RegistrationJob.objects.filter(pk=job.pk).update(
        queued_at=timezone.now() - dt.timedelta(seconds=42)
    )
    other = register(model, personas.bot).registration_job
    before = scrape()
    job_run(RegistrationJob, job.pk, _finish)
    job_run(RegistrationJob, other.pk, _boom)  # retried: attempts remain
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    kind = "RegistrationJob"
    assert delta("modelgate_jobs_finished_total", kind=kind, outcome="succeeded") == 1
    assert delta("modelgate_jobs_finished_total", kind=kind, outcome="retried") == 1
    assert delta("modelgate_job_duration_seconds_count", kind=kind, outcome="succeeded") == 1
    assert delta("modelgate_job_queue_wait_seconds_count", kind=kind) == 2
    # The 42 s wait lands between the 30 s and 60 s buckets.
    assert delta("modelgate_job_queue_wait_seconds_bucket", kind=kind, le="30.0") == 1
    assert delta("modelgate_job_queue_wait_seconds_bucket", kind=kind, le="60.0") == 2
    assert 42 <= delta("modelgate_job_queue_wait_seconds_sum", kind=kind) < 50


def test_sweep_requeues_are_counted(personas, model, django_capture_on_commit_callbacks):
    job = register(model, personas.bot).registration_job
    job_claim(RegistrationJob, job.pk)
    RegistrationJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(hours=1)
    )
    before = scrape()
    with django_capture_on_commit_callbacks():
        assert requeue_stale_jobs()["requeued"] == 1
    after = scrape()
    name = "modelgate_job_sweep_total"
    assert value(after, name, action="requeued") - value(before, name, action="requeued") == 1


def test_an_opened_alert_is_counted_once_however_often_it_recurs(
    personas, model, django_capture_on_commit_callbacks
):
    version = ready_version(model, personas.owner)
    monitor = Monitor.objects.create(
        registered_model=model,
        version=version,
        name="daily",
        checks=["drift"],
        created_by=personas.owner,
    )
    now = timezone.now()
    run = CheckRun.objects.create(
        monitor=monitor,
        window_start=now - dt.timedelta(hours=1),
        window_end=now,
        status="succeeded",
        finished_at=now,
    )
    before = scrape()
    for _ in range(2):  # the second is one more occurrence of the same open alert
        with django_capture_on_commit_callbacks(execute=True):
            monitoring_services.alert_raise(
                monitor=monitor, run=run, kind="data_drift", message="drifted", details={}
            )
    after = scrape()
    name = "modelgate_alerts_opened_total"
    assert value(after, name, kind="data_drift") - value(before, name, kind="data_drift") == 1


# --- access -----------------------------------------------------------------------------------


def test_metrics_answer_loopback_only_and_never_a_proxied_request(settings):
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 404
    # A reverse proxy on the same host connects from 127.0.0.1 but says whom for.
    relayed = Client(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert relayed.status_code == 404
    assert relayed.json()["error"]["code"] == "not_found"


def test_with_a_metrics_token_only_the_token_counts(settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404
    bad = Client(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert bad.status_code == 404
    remote = Client(REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert scrape(remote, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")


# --- readiness --------------------------------------------------------------------------------


def test_readyz_is_200_when_database_broker_and_storage_answer():
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


def test_readyz_is_503_naming_the_broker_when_it_is_down(settings, monkeypatch):
    from config.celery import app

    if not app.conf.broker_url.startswith("redis://"):
        pytest.skip("needs the Redis broker")
    closed = free_port()  # nothing listens there
    settings.READYZ_TIMEOUT_SECONDS = 0.5
    # Celery reads CELERY_BROKER_URL from the environment before its own config.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{closed}/0")
    response = Client().get("/readyz")
    monkeypatch.undo()
    assert app.conf.broker_url.startswith("redis://") and str(closed) not in app.conf.broker_url
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "not_ready" and "broker" in body["message"]
    assert body["details"]["checks"] == {"database": "ok", "broker": "failed", "storage": "ok"}
    assert str(closed) not in response.content.decode()  # the error itself is only logged


def test_healthz_stays_liveness_without_any_dependency(settings):
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


# --- the request log line ----------------------------------------------------------------------


def test_the_json_request_line_carries_the_request_id_the_audit_event_records(personas, caplog):
    client = client_for(personas.owner)
    with caplog.at_level(logging.INFO, logger="modelgate.request"):
        response = client.post(
            "/api/v1/models/",
            {"name": "churn", "task": "classification", "risk_tier": "low"},
            format="json",
            HTTP_X_REQUEST_ID="pipeline-run-77",
        )
    assert response.status_code == 201
    assert response["X-Request-ID"] == "pipeline-run-77"
    event = AuditEvent.objects.get(action="registry.model.created")
    assert event.request_id == "pipeline-run-77"

    (record,) = [r for r in caplog.records if r.name == "modelgate.request"]
    line = json.loads(telemetry.JsonFormatter().format(record))
    assert line["request_id"] == event.request_id
    assert line["method"] == "POST" and line["path"] == "/api/v1/models/"
    assert line["status"] == 201 and line["user"] == "owner"
    assert line["family"] == "api:model-list"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["level"] == "INFO" and line["logger"] == "modelgate.request"
    assert line["time"].endswith("Z")


def test_an_anonymous_request_is_logged_with_an_empty_user_and_a_fresh_id(caplog):
    with caplog.at_level(logging.INFO, logger="modelgate.request"):
        response = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces\n")
    (record,) = [r for r in caplog.records if r.name == "modelgate.request"]
    line = json.loads(telemetry.JsonFormatter().format(record))
    assert line["user"] == "" and line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32  # the unsafe header was replaced


@pytest.mark.urls("config.serve_urls")
def test_the_serving_process_metrics_and_readyz_follow_the_same_rules():
    from lifecycle import metrics as serving_metrics

    labels = dict(model="churn", environment="production", version="3", status="200")
    before = scrape()
    serving_metrics.observe("churn", "production", 3, 200, 0.01)
    after = scrape()
    name = "modelgate_serving_requests_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    assert not any(key[0] == "modelgate_jobs" for key in after)  # no database read here
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 404
    assert Client().get("/readyz").json()["status"] == "ready"
