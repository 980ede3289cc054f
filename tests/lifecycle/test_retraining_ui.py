"""Retraining pages: the model page's panel, the policy form, "Retrain now", the run page,
the retrained version's "what changed", and the alert that shows its run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from sklearn.ensemble import RandomForestClassifier

from lifecycle import retraining
from lifecycle.models import RetrainingPolicy, RetrainingRun
from monitoring import services as monitoring_services
from monitoring.models import Alert, CheckRun, RetrainingSignal
from registry import services as registry_services
from tests.conftest import ready_version
from tests.lifecycle.retraining_support import complete, execute, fitted_bytes, weak_bytes

pytestmark = pytest.mark.django_db

MODEL_PAGE = "/models/credit/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def panel_of(html: str) -> str:
    return html.split('id="panel-retraining"')[1].split("</section>")[0]


def test_the_owner_sees_the_policy_the_next_run_and_both_buttons(model, personas, parent):
    retraining.retraining_policy_set(
        actor=personas.owner, model=model, schedule="15 2 * * *", on_alert=True, debounce_checks=1
    )
    panel = panel_of(logged_in(personas.owner).get(MODEL_PAGE).content.decode())
    assert "Refit" in panel and 'schedule <span class="mono">15 2 * * *</span>' in panel
    assert 'id="retraining-next-run"' in panel and "02:15 UTC" in panel
    assert "monitoring alerts (held in 1 of the last 1 checks)" in panel
    assert 'id="retraining-policy-edit"' in panel and 'id="retrain-now"' in panel


def test_a_viewer_sees_the_history_without_buttons(model, personas, parent):
    panel = panel_of(logged_in(personas.viewer).get(MODEL_PAGE).content.decode())
    assert "No retraining policy" in panel and "No retraining runs yet." in panel
    assert 'id="retrain-now"' not in panel and 'id="retraining-policy-edit"' not in panel
    assert logged_in(personas.viewer).get("/models/credit/retraining/policy/").status_code == 403
    response = logged_in(personas.viewer).post("/models/credit/retraining/run/", {}, follow=True)
    assert "not allowed to register" in response.content.decode()
    assert not RetrainingRun.objects.exists()
    assert logged_in(personas.outsider).get("/models/credit/retraining/policy/").status_code == 404


def test_the_policy_form_saves_through_the_service_and_shows_refusals(model, personas, parent):
    client = logged_in(personas.owner)
    form = client.get("/models/credit/retraining/policy/").content.decode()
    assert 'name="strategy"' in form and "add_estimators" in form  # the strategies' table
    fields = {
        "enabled": "on",
        "strategy": "refit",
        "params": "",
        "schedule": "0 4 * * 1",
        "on_alert": "on",
        "debounce_checks": 2,
        "debounce_window": 3,
        "production_window_hours": 0,
        "holdout_fraction": 0.2,
        "seed": 7,
        "cooldown_minutes": 30,
        "daily_budget": 2,
        "auto_submit": "on",
        "primary_metric": "accuracy",
        "tolerance": 0.02,
        "sensitive_columns": "",
    }
    response = client.post("/models/credit/retraining/policy/", fields)
    assert response.status_code == 302
    policy = RetrainingPolicy.objects.get()
    assert (policy.schedule, policy.debounce_checks, policy.seed) == ("0 4 * * 1", 2, 7)
    assert policy.updated_by == personas.owner
    refused = client.post(
        "/models/credit/retraining/policy/",
        {**fields, "strategy": "online", "production_window_hours": 24},
    )
    html = refused.content.decode()
    assert refused.status_code == 200 and "partial_fit" in html
    assert RetrainingPolicy.objects.get().strategy == "refit"


def test_retrain_now_queues_a_run_with_the_reason_and_refuses_a_second(model, personas, parent):
    client = logged_in(personas.owner)
    response = client.post("/models/credit/retraining/run/", {"reason": "new quarter"})
    run = RetrainingRun.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/models/credit/retraining/runs/{run.pk}/"
    )
    assert run.reason == "new quarter" and run.requested_by == personas.owner
    again = client.post("/models/credit/retraining/run/", {}, follow=True).content.decode()
    assert "already" in again or "is queued" in again
    assert RetrainingRun.objects.count() == 1


def test_the_run_page_shows_the_log_the_digests_and_the_comparison(model, personas, parent):
    run = execute(retraining.retraining_run_request(actor=personas.owner, model=model))
    html = (
        logged_in(personas.viewer).get(f"/models/credit/retraining/runs/{run.pk}/").content.decode()
    )
    assert "fitting: refit on 480 rows" in html and run.data_record["train"]["sha256"] in html
    assert run.data_record["inputs"]["dataset"]["sha256"] in html
    assert "No champion to compare with" in html
    assert 'id="retraining-run-version"' in html and "scikit-learn" in html
    assert (
        logged_in(personas.outsider).get(f"/models/credit/retraining/runs/{run.pk}/").status_code
        == 404
    )


def test_the_model_page_says_in_words_when_the_champion_won(model, personas, training):
    champion = ready_version(model, personas.bot, training_dataset=training, target_column="label")
    registry_services.alias_set(
        actor=personas.owner, model=model, name="champion", version_number=1
    )
    weak = ready_version(
        model, personas.bot, artifact=weak_bytes(), training_dataset=training, target_column="label"
    )
    retraining.retraining_policy_set(actor=personas.owner, model=model, primary_metric="accuracy")
    run = complete(
        retraining.retraining_run_request(actor=personas.owner, model=model, parent=weak)
    )
    panel = panel_of(logged_in(personas.owner).get(MODEL_PAGE).content.decode())
    row = panel.split(f'id="retraining-run-{run.pk}"')[1].split("</tr>")[0]
    assert "rejected by the champion" in row
    assert f"v{run.version.number} was registered but not submitted: the champion is better" in row
    assert f"champion {run.comparison['champion']:.4f}" in row
    assert champion.number == 1


def test_the_retrained_version_shows_its_run_its_parent_and_what_changed(model, personas, training):
    ready_version(
        model,
        personas.bot,
        artifact=fitted_bytes(RandomForestClassifier(n_estimators=10, random_state=0)),
        training_dataset=training,
        target_column="label",
    )
    retraining.retraining_policy_set(
        actor=personas.owner, model=model, strategy="warm_start", params={"add_estimators": 5}
    )
    run = complete(retraining.retraining_run_request(actor=personas.owner, model=model))
    html = (
        logged_in(personas.viewer)
        .get(f"/models/credit/versions/{run.version.number}/")
        .content.decode()
    )
    panel = html.split('id="panel-retraining-run"')[1].split("</section>")[0]
    assert f'href="/models/credit/retraining/runs/{run.pk}/"' in panel
    assert 'href="/models/credit/versions/1/"' in panel
    hyper = panel.split('id="retrained-hyperparameters"')[1]
    assert "n_estimators" in hyper and ">10<" in hyper and ">15<" in hyper
    assert "roc_auc" in panel.split('id="retrained-metrics"')[1]
    assert run.version.training_dataset.name in panel  # the rows it was trained on
    assert "a ModelGate job (retraining-run-" in html
    parent_page = logged_in(personas.viewer).get("/models/credit/versions/1/").content.decode()
    assert 'id="panel-retraining-run"' not in parent_page


def test_the_alert_shows_the_run_it_started_and_the_run_shows_the_alert(model, personas, parent):
    retraining.retraining_policy_set(
        actor=personas.owner, model=model, on_alert=True, cooldown_minutes=0
    )
    monitor = monitoring_services.monitor_create(
        actor=personas.owner, model=model, version=parent, name="daily", checks=["drift"]
    )
    check = CheckRun.objects.create(
        monitor=monitor,
        window_start=timezone.now() - dt.timedelta(hours=1),
        window_end=timezone.now(),
        status="succeeded",
        breaches=[{"kind": "drift"}],
    )
    alert = Alert.objects.create(
        registered_model=model,
        monitor=monitor,
        kind="drift",
        message="income drifted",
        first_run=check,
        last_run=check,
    )
    RetrainingSignal.objects.create(
        registered_model=model, version=parent, alert=alert, reason=alert.message
    )
    retraining.retraining_signals_consume()
    run = RetrainingRun.objects.get()
    dashboard = logged_in(personas.viewer).get("/monitoring/models/credit/").content.decode()
    row = dashboard.split(f'id="alert-{alert.pk}"')[1].split("</tr>")[0]
    assert f'href="/models/credit/retraining/runs/{run.pk}/"' in row and f"run #{run.pk}" in row
    page = (
        logged_in(personas.viewer).get(f"/models/credit/retraining/runs/{run.pk}/").content.decode()
    )
    assert f"alert #{alert.pk}</a>: income drifted" in page
