"""Monitors, checks and alerts through the REST API; permissions; OpenAPI schema."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from common.jobs import job_claim
from monitoring import services
from monitoring.checks import check_run_execute
from monitoring.models import Alert, CheckRun, Monitor
from tests.conftest import ROOT, client_for
from tests.monitoring.conftest import prediction_frame
from tests.monitoring.test_checks import ingest

pytestmark = pytest.mark.django_db

BASE = "/api/v1/models/credit/monitors/"


def create(client: Any, **body: Any) -> Any:
    body.setdefault("name", "main")
    body.setdefault("version", "1")
    return client.post(BASE, body, format="json")


def test_owner_creates_a_monitor_and_runs_it(monitored: Any, personas: Any) -> None:
    owner = client_for(personas.owner)
    response = create(owner, thresholds={"psi": 0.2}, window_hours=48, min_rows=10)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["thresholds"]["psi"] == 0.2 and body["thresholds"]["p_value"] == 0.05
    assert body["checks"] == ["drift", "prediction_drift", "label_drift", "performance"]
    assert body["window_rows"] is None and body["drift_method"] == "auto"
    assert create(owner).status_code == 409  # same name
    run = owner.post(f"{BASE}{body['id']}/run/")
    assert run.status_code == 202 and run.json()["status"] == "queued"
    job = job_claim(CheckRun, run.json()["id"])
    check_run_execute(job=job)
    checks = owner.get(f"{BASE}{body['id']}/checks/").json()
    assert checks["results"][0]["status"] == "succeeded"
    assert client_for(personas.viewer).get(f"{BASE}{body['id']}/").status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"thresholds": {"nonsense": 1}}, "invalid"),
        ({"checks": ["vibes"]}, "invalid"),
        ({"version": "99"}, "not_found"),
        ({"tests": {"age": "astrology"}}, "invalid"),
        ({"window_hours": 0}, "invalid"),
        ({"window_rows": 0}, "invalid"),
        ({"window_rows": "many"}, "invalid"),
        ({"drift_method": "guess"}, "invalid"),
        ({"weights": {"age": -1}}, "invalid"),
        ({"weights": {"shoe_size": 1}}, "invalid"),
    ],
)
def test_bad_monitors_are_refused(monitored: Any, personas: Any, body: Any, code: str) -> None:
    response = create(client_for(personas.owner), **body)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] == code
    assert not Monitor.objects.exists()


def test_monitor_permissions(monitored: Any, personas: Any) -> None:
    assert create(client_for(personas.outsider)).status_code == 404
    assert create(client_for(personas.viewer)).status_code == 403
    monitor = services.monitor_create(
        actor=personas.owner, model=monitored.registered_model, version=monitored, name="m"
    )
    assert client_for(personas.outsider).get(f"{BASE}{monitor.pk}/").status_code == 404
    assert client_for(personas.viewer).post(f"{BASE}{monitor.pk}/run/").status_code == 403
    assert client_for(personas.outsider).get(f"{BASE}{monitor.pk}/checks/").status_code == 404
    assert not CheckRun.objects.exists()


def _alert(monitored: Any, personas: Any) -> Alert:
    monitor = services.monitor_create(
        actor=personas.owner,
        model=monitored.registered_model,
        version=monitored,
        name="m",
        checks=["drift"],
        min_rows=10,
    )
    ingest(monitored, personas.bot, prediction_frame(1000, shift=2.0), "d")
    import datetime as dt

    run, _ = services.check_run_request(
        actor=personas.owner, monitor=monitor, window_end=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    )
    check_run_execute(job=job_claim(CheckRun, run.pk))
    return Alert.objects.get()


def test_alert_list_and_actions(monitored: Any, personas: Any) -> None:
    alert = _alert(monitored, personas)
    listed = client_for(personas.viewer).get("/api/v1/alerts/?status=open").json()
    assert [a["id"] for a in listed["results"]] == [alert.pk]
    assert client_for(personas.outsider).get("/api/v1/alerts/").json()["results"] == []
    assert client_for(personas.auditor).get("/api/v1/alerts/").json()["count"] == 1
    url = f"/api/v1/alerts/{alert.pk}/"
    assert client_for(personas.outsider).post(url + "acknowledge/").status_code == 404
    assert client_for(personas.viewer).post(url + "acknowledge/").status_code == 403
    owner = client_for(personas.owner)
    assert owner.post(url + "acknowledge/").json()["status"] == "acknowledged"
    resolved = owner.post(url + "resolve/", {"comment": "retrained"}, format="json").json()
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "owner"
    again = owner.post(url + "acknowledge/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    assert client_for(personas.viewer).get("/api/v1/alerts/?status=open").json()["count"] == 0


def test_openapi_schema_is_valid_and_documents_monitoring() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DEBUG": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for path in (
        "/api/v1/models/{model_name}/versions/{number}/predictions/",
        "/api/v1/models/{model_name}/labels/",
        "/api/v1/models/{model_name}/monitors/{id}/run/",
        "/api/v1/models/{model_name}/monitors/{id}/checks/",
        "/api/v1/models/{model_name}/ab/",
        "/api/v1/alerts/",
    ):
        assert path in result.stdout, path
