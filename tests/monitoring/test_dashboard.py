"""The monitoring dashboard: server-rendered pages, htmx alert actions, a real browser."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from django.test import Client

from common.jobs import job_claim
from monitoring import services
from monitoring.checks import check_run_execute
from monitoring.choices import CheckKind
from monitoring.models import Alert, CheckRun
from tests.conftest import log_in, shot
from tests.monitoring.conftest import prediction_frame

DAY = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def populate(monitored: Any, personas: Any, checks: list[str] | None = None) -> Any:
    monitor = services.monitor_create(
        actor=personas.owner,
        model=monitored.registered_model,
        version=monitored,
        name="daily",
        checks=checks or ["drift", "performance"],
        min_rows=50,
        window_hours=24,
    )
    for day in range(4):
        start = (DAY + dt.timedelta(days=day, hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
        frame = prediction_frame(
            1000, seed=day, shift=0.0 if day < 2 else 1.5, start=start, prefix=f"d{day}-"
        )
        services.prediction_batch_ingest(
            actor=personas.bot,
            version=monitored,
            batch_id=f"day-{day}",
            table=pa.Table.from_pandas(frame, preserve_index=False),
        )
        labels = frame[["request_id", "prediction"]].rename(columns={"prediction": "label"})
        services.label_batch_ingest(
            actor=personas.bot,
            model=monitored.registered_model,
            batch_id=f"labels-{day}",
            table=pa.Table.from_pandas(labels, preserve_index=False),
        )
        run, _ = services.check_run_request(
            actor=personas.owner, monitor=monitor, window_end=DAY + dt.timedelta(days=day + 1)
        )
        check_run_execute(job=job_claim(CheckRun, run.pk))
    return monitor


def web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_dashboard_shows_charts_features_and_alerts(monitored: Any, personas: Any) -> None:
    populate(monitored, personas, checks=list(CheckKind.values))
    page = web(personas.viewer).get("/monitoring/models/credit/")
    assert page.status_code == 200
    html = page.content.decode()
    for chart in ("drift-chart", "metric-chart", "feature-chart"):
        assert f'data-chart="{chart}"' in html
    assert "plotly/plotly.min.js" in html and "cdn" not in html.lower()
    assert 'id="feature-table"' in html and "drifted" in html
    kinds = set(Alert.objects.values_list("kind", flat=True))
    # The posted scores are uniform noise, unlike the model's own scores on its training
    # rows: the predictions drift as well as the features (the labels, about as balanced
    # as the training target, do not).
    assert kinds == {"drift", "prediction_drift"}, kinds
    assert "features drifted" in html and "Predictions drifted" in html
    assert "Acknowledge" not in html  # the viewer may not act on alerts
    assert web(personas.owner).get("/monitoring/models/credit/").content.decode().count(
        "Acknowledge"
    ) == len(kinds)
    assert web(personas.outsider).get("/monitoring/models/credit/").status_code == 404
    version_page = web(personas.viewer).get("/models/credit/versions/1/").content.decode()
    assert 'id="monitoring-dashboard-link"' in version_page
    model_page = web(personas.viewer).get("/models/credit/").content.decode()
    assert 'id="model-monitoring-link" href="/monitoring/models/credit/"' in model_page
    assert 'id="output-table"' in html and "probability" in html


@pytest.mark.django_db
def test_htmx_alert_actions_return_the_fragment(monitored: Any, personas: Any) -> None:
    populate(monitored, personas)
    alert = Alert.objects.get()
    url = f"/monitoring/models/credit/alerts/{alert.pk}/acknowledge/"
    assert web(personas.viewer).post(url, HTTP_HX_REQUEST="true").status_code == 403
    assert web(personas.outsider).post(url, HTTP_HX_REQUEST="true").status_code == 404
    response = web(personas.owner).post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.lstrip().startswith('<section class="card" id="alerts">')
    assert "Acknowledged" in fragment
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == personas.owner


@pytest.mark.django_db
def test_a_viewer_refused_an_alert_action_or_a_check_gets_the_one_error_shape(
    monitored: Any, personas: Any
) -> None:
    monitor = populate(monitored, personas)
    alert = Alert.objects.get()
    runs = CheckRun.objects.count()
    viewer = web(personas.viewer)
    for url in (
        f"/monitoring/models/credit/alerts/{alert.pk}/acknowledge/",
        f"/monitoring/models/credit/alerts/{alert.pk}/resolve/",
        f"/monitoring/models/credit/monitors/{monitor.pk}/run/",
    ):
        response = viewer.post(url, HTTP_HX_REQUEST="true")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"
        error = response.json()["error"]
        assert error["code"] == "permission_denied"
        assert error["details"] == {"action": "change"} and "not allowed" in error["message"]
    alert.refresh_from_db()
    assert alert.status == "open"
    assert CheckRun.objects.count() == runs


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_owner_reads_the_dashboard_and_resolves_the_alert(
    page: Any, monitored: Any, personas: Any
) -> None:
    from playwright.sync_api import expect

    populate(monitored, personas, checks=list(CheckKind.values))
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    log_in(page, "owner")
    page.goto("/models/credit/versions/1/")
    page.click("#monitoring-dashboard-link")
    page.wait_for_url("**/monitoring/models/credit/")
    for chart in ("drift-chart", "metric-chart", "feature-chart"):
        expect(page.locator(f"[data-chart='{chart}'] .main-svg").first).to_be_visible()
    expect(page.locator("#feature-table")).to_contain_text("drifted")
    shot(page, "monitoring-dashboard")
    expect(page.locator("#output-table")).to_contain_text("probability")
    page.click("#feature-table a:text('income')")
    expect(page.locator("[data-chart='feature-chart']")).to_contain_text("income")
    rows = page.locator("#alerts tbody tr[id^='alert-']")
    active = Alert.objects.count()
    assert active == 2  # data drift and prediction drift
    expect(rows).to_have_count(active)
    rows.first.locator("button:text('Acknowledge')").click()
    expect(page.locator("#alerts")).to_contain_text("Acknowledged")
    for remaining in range(active - 1, -1, -1):
        rows.first.locator("button:text('Resolve')").click()
        expect(rows).to_have_count(remaining)
    expect(page.locator("#alerts")).to_contain_text("No active alerts")
    assert set(Alert.objects.values_list("status", flat=True)) == {"resolved"}
    shot(page, "monitoring-dashboard-resolved")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


@pytest.mark.django_db
def test_the_auditor_reads_every_monitoring_table_in_the_admin(
    monitored: Any, personas: Any
) -> None:
    populate(monitored, personas)
    client = web(personas.auditor)
    for name in (
        "monitor",
        "checkrun",
        "alert",
        "predictionbatch",
        "labelbatch",
        "referenceprofile",
        "retrainingsignal",
    ):
        listing = client.get(f"/admin/monitoring/{name}/")
        assert listing.status_code == 200, name
    alert = Alert.objects.get()
    detail = client.get(f"/admin/monitoring/alert/{alert.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content  # read-only
