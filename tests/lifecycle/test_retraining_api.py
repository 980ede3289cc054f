"""The retraining API: policy GET/PUT, POST retrain, runs; rights, bad input, the schema."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys

import pytest
from django_celery_beat.models import PeriodicTask

from common.models import AuditEvent
from lifecycle import retraining
from lifecycle.models import RetrainingPolicy, RetrainingRun
from registry import services as registry_services
from tests.conftest import ROOT, client_for, create_model, csv_bytes, grant, training_frame
from tests.lifecycle.retraining_support import upload_dataset

pytestmark = pytest.mark.django_db

POLICY = "/api/v1/models/credit/retraining-policy"
RETRAIN = "/api/v1/models/credit/retrain/"
RUNS = "/api/v1/models/credit/retraining-runs/"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def put(user, **body):
    return client_for(user).put(POLICY, body, format="json")


# --- policy -----------------------------------------------------------------------------------


def test_the_owner_creates_reads_and_changes_the_policy(model, personas, parent):
    assert error_of(client_for(personas.owner).get(POLICY))["code"] == "not_found"
    created = put(personas.owner, strategy="warm_start", params={"add_iterations": 50})
    assert created.status_code == 200, created.json()
    body = created.json()
    assert body["strategy"] == "warm_start" and body["params"] == {"add_iterations": 50}
    assert body["primary_metric"] == "roc_auc" and body["cooldown_minutes"] == 60
    changed = put(personas.owner, cooldown_minutes=5, on_alert=True).json()
    # Fields left out keep their value.
    assert changed["strategy"] == "warm_start" and changed["cooldown_minutes"] == 5
    assert client_for(personas.viewer).get(POLICY).json()["on_alert"] is True
    actions = list(
        AuditEvent.objects.filter(object_type="lifecycle.retrainingpolicy")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["lifecycle.retraining_policy.created", "lifecycle.retraining_policy.updated"]


def test_only_the_owner_sets_the_policy_and_outsiders_do_not_see_it(model, personas, parent):
    put(personas.owner, enabled=True)
    assert error_of(put(personas.viewer, enabled=False))["code"] == "permission_denied"
    assert put(personas.bot, enabled=False).status_code == 403
    assert client_for(personas.outsider).get(POLICY).status_code == 404
    assert put(personas.outsider, enabled=False).status_code == 404
    assert client_for(None).get(POLICY).status_code in (401, 403)
    assert RetrainingPolicy.objects.get().enabled is True


@pytest.mark.parametrize(
    ("body", "status", "code", "field", "words"),
    [
        ({"strategy": "distillation"}, 400, "invalid", "strategy", "not a valid choice"),
        (
            {"strategy": "online", "production_window_hours": 24},
            400,
            "unsupported_strategy",
            "strategy",
            "partial_fit",
        ),
        (
            {"strategy": "online"},
            400,
            "invalid",
            "production_window_hours",
            "labelled production rows",
        ),
        ({"params": {"trees": 3}}, 400, "invalid_strategy", "trees", "Unknown parameter"),
        ({"schedule": "every monday"}, 400, "invalid_schedule", "schedule", "five fields"),
        ({"schedule": "0 25 * * *"}, 400, "invalid_schedule", "schedule", "does not parse"),
        (
            {"debounce_checks": 3, "debounce_window": 2},
            400,
            "invalid",
            "debounce_checks",
            "from 1 to 2",
        ),
        (
            {"primary_metric": "rmse"},
            400,
            "invalid",
            "primary_metric",
            "not a classification metric",
        ),
        ({"holdout_fraction": 0.9}, 400, "invalid", "holdout_fraction", "0.05 to 0.5"),
    ],
)
def test_a_bad_policy_is_refused_with_the_field_and_nothing_changes(
    model, personas, parent, body, status, code, field, words
):
    response = put(personas.owner, **body)
    assert response.status_code == status, response.json()
    error = error_of(response)
    assert error["code"] == code and field in error["details"]
    assert words in error["message"] + str(error["details"])
    assert not RetrainingPolicy.objects.exists()
    assert not PeriodicTask.objects.filter(task="lifecycle.tasks.retrain_on_schedule").exists()
    assert not AuditEvent.objects.filter(action__startswith="lifecycle.retraining_policy").exists()


def test_a_dataset_of_another_model_is_refused(model, personas, parent):
    other = create_model(personas.owner, name="other")
    foreign = upload_dataset(other, personas.owner, training_frame(50))
    error = error_of(put(personas.owner, training_dataset=foreign.pk))
    assert error["code"] == "invalid" and "another model" in error["details"]["training_dataset"]
    assert not RetrainingPolicy.objects.exists()


def test_a_schedule_is_a_beat_periodic_task_that_follows_the_policy(model, personas, parent):
    body = put(personas.owner, schedule="30 4 * * 1").json()
    task = PeriodicTask.objects.get(task="lifecycle.tasks.retrain_on_schedule")
    assert task.enabled and task.args == f"[{model.pk}]" and task.name == "retrain credit"
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone)) == ("30", "4", "1", "UTC")
    next_run = dt.datetime.fromisoformat(body["next_run_at"].replace("Z", "+00:00"))
    assert next_run.weekday() == 0 and (next_run.hour, next_run.minute) == (4, 30)
    assert body["periodic_task"] == "retrain credit"

    put(personas.owner, schedule="0 2 * * *")
    task.refresh_from_db()
    assert (task.crontab.hour, task.crontab.day_of_week, task.enabled) == ("2", "*", True)
    assert PeriodicTask.objects.filter(task="lifecycle.tasks.retrain_on_schedule").count() == 1

    disabled = put(personas.owner, enabled=False).json()
    task.refresh_from_db()
    assert task.enabled is False and disabled["next_run_at"] is None
    put(personas.owner, enabled=True, schedule="")
    task.refresh_from_db()
    assert task.enabled is False


def test_next_cron_time_follows_celerys_day_rules():
    after = dt.datetime(2026, 1, 7, 10, 0, tzinfo=dt.UTC)  # a Wednesday
    assert retraining.next_cron_time("0 3 * * 1", after) == dt.datetime(
        2026, 1, 12, 3, 0, tzinfo=dt.UTC
    )
    assert retraining.next_cron_time("*/15 * * * *", after) == after + dt.timedelta(minutes=15)
    assert retraining.next_cron_time("0 0 29 2 *", after) == dt.datetime(2028, 2, 29, tzinfo=dt.UTC)


# --- retrain ------------------------------------------------------------------------------------


def test_a_pipeline_asks_for_a_run_and_gets_202_with_the_run(model, personas, parent, training):
    response = client_for(personas.bot).post(RETRAIN, {"reason": "nightly"}, format="json")
    assert response.status_code == 202, response.json()
    run = response.json()
    assert run["status"] == "queued" and run["trigger"] == "request"
    assert run["requested_by"] == "pipeline-bot" and run["reason"] == "nightly"
    assert run["parent"] == 1 and run["strategy"] == "refit"
    assert run["training_dataset"]["id"] == training.pk
    assert run["url"].endswith(f"/api/v1/models/credit/retraining-runs/{run['id']}/")
    detail = client_for(personas.viewer).get(f"{RUNS}{run['id']}/").json()
    assert detail["id"] == run["id"] and detail["outcome"] == "pending"


def test_a_retrain_request_retried_with_its_idempotency_key_queues_one_run(
    model, personas, parent
):
    client = client_for(personas.bot)
    first = client.post(RETRAIN, {"reason": "r"}, format="json", HTTP_IDEMPOTENCY_KEY="run-9")
    again = client.post(RETRAIN, {"reason": "r"}, format="json", HTTP_IDEMPOTENCY_KEY="run-9")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert RetrainingRun.objects.count() == 1


def test_a_second_request_while_a_run_is_active_is_refused(model, personas, parent):
    client = client_for(personas.bot)
    assert client.post(RETRAIN, {}, format="json").status_code == 202
    second = client.post(RETRAIN, {"force": True}, format="json")
    assert second.status_code == 409 and error_of(second)["code"] == "run_active"
    assert RetrainingRun.objects.count() == 1


def test_the_cooldown_holds_unless_a_person_forces_the_run(model, personas, parent):
    put(personas.owner, cooldown_minutes=30)
    client = client_for(personas.owner)
    first = client.post(RETRAIN, {}, format="json").json()
    RetrainingRun.objects.filter(pk=first["id"]).update(status="succeeded")
    refused = client.post(RETRAIN, {}, format="json")
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "cooldown" and error["details"]["minutes_left"] == 30
    forced = client.post(RETRAIN, {"force": True, "reason": "hotfix"}, format="json")
    assert forced.status_code == 202 and forced.json()["forced"] is True
    assert RetrainingRun.objects.count() == 2


def test_a_training_dataset_without_a_feature_is_refused_naming_the_column(model, personas, parent):
    narrow = upload_dataset(
        model, personas.bot, training_frame(80).drop(columns=["income"]), "narrow"
    )
    response = client_for(personas.bot).post(
        RETRAIN, {"training_dataset": narrow.pk}, format="json"
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_dataset" and error["details"]["missing_columns"] == ["income"]
    assert "'income' is missing" in error["message"]
    assert not RetrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"strategy": "boosting"}, 400, "invalid"),
        ({"strategy": "warm_start", "params": {"add_estimators": 5}}, 400, "unsupported_strategy"),
        ({"strategy": "online", "production_window_hours": 24}, 400, "unsupported_strategy"),
        ({"parent": 9}, 404, "not_found"),
        ({"training_dataset": 999999}, 404, "not_found"),
        ({"seed": -1}, 400, "invalid"),
    ],
)
def test_bad_requests_are_refused_and_queue_nothing(model, personas, parent, body, status, code):
    response = client_for(personas.bot).post(RETRAIN, body, format="json")
    assert response.status_code == status, response.json()
    assert error_of(response)["code"] == code
    assert not RetrainingRun.objects.exists()


def test_a_dataset_of_another_model_cannot_be_trained_on(model, personas, parent):
    other = create_model(personas.owner, name="other")
    grant(other, personas.bot, "contributor")
    foreign = registry_services.dataset_upload(
        actor=personas.bot,
        model=other,
        name="t",
        role="training",
        upload=io.BytesIO(csv_bytes(training_frame(50))),
        filename="t.csv",
    )
    response = client_for(personas.bot).post(
        RETRAIN, {"training_dataset": foreign.pk}, format="json"
    )
    assert response.status_code == 400 and "another model" in error_of(response)["message"]
    assert not RetrainingRun.objects.exists()


def test_who_may_retrain(model, personas, parent):
    assert client_for(personas.viewer).post(RETRAIN, {}, format="json").status_code == 403
    assert client_for(personas.outsider).post(RETRAIN, {}, format="json").status_code == 404
    assert client_for(personas.outsider).get(RUNS).status_code == 404
    assert not RetrainingRun.objects.exists()


def test_a_model_without_a_ready_version_has_nothing_to_retrain(model, personas):
    response = client_for(personas.bot).post(RETRAIN, {}, format="json")
    assert response.status_code == 409 and error_of(response)["code"] == "no_parent"


def test_the_run_list_costs_a_fixed_number_of_queries(
    model, personas, parent, django_assert_max_num_queries
):
    for _ in range(4):
        run = retraining.retraining_run_request(actor=personas.owner, model=model)
        RetrainingRun.objects.filter(pk=run.pk).update(status="succeeded")
    client = client_for(personas.viewer)
    with django_assert_max_num_queries(8):
        body = client.get(RUNS).json()
    assert body["count"] == 4 and body["results"][0]["id"] > body["results"][-1]["id"]


def test_the_openapi_schema_documents_retraining_with_the_error_shape():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DEBUG": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    schema = result.stdout
    for path in (
        "/api/v1/models/{model_name}/retraining-policy:",
        "/api/v1/models/{model_name}/retrain/:",
        "/api/v1/models/{model_name}/retraining-runs/:",
        "/api/v1/models/{model_name}/retraining-runs/{id}/:",
    ):
        assert path in schema, path
    retrain = schema.split("/api/v1/models/{model_name}/retrain/:")[1].split("\n  /api/")[0]
    assert "'202'" in retrain and "'409'" in retrain and "#/components/schemas/Error" in retrain
