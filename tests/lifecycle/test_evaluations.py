"""Evaluation jobs: requested through the API, run by the worker's service, compared with the champion."""

from __future__ import annotations

import io

import pytest

from common.jobs import job_claim
from common.models import AuditEvent
from lifecycle import services
from lifecycle.models import Evaluation
from lifecycle.tasks import heavy_evaluate
from registry import services as registry_services
from tests.conftest import client_for, csv_bytes, grant, ready_version, training_frame

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(model, personas):
    return registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="holdout",
        role="evaluation",
        upload=io.BytesIO(csv_bytes(training_frame(400, seed=9))),
        filename="holdout.csv",
    )


def run(job: Evaluation) -> Evaluation:
    heavy_evaluate.run(job.pk)
    return Evaluation.objects.get(pk=job.pk)


def url(number: int = 1) -> str:
    return f"/api/v1/models/credit/versions/{number}/evaluations/"


def test_an_evaluation_scores_the_version_beside_the_champion(model, personas, dataset):
    ready_version(model, personas.bot)
    ready_version(model, personas.bot, artifact=None)
    registry_services.alias_set(
        actor=personas.owner, model=model, name="champion", version_number=1
    )
    response = client_for(personas.bot).post(
        url(2), {"dataset": dataset.pk, "target_column": "label"}, format="json"
    )
    assert response.status_code == 202, response.json()
    job = run(Evaluation.objects.get(pk=response.json()["id"]))
    assert job.status == "succeeded", job.error
    assert job.champion.number == 1
    assert job.report["rows"] == 400 and job.champion_report["rows"] == 400
    assert {row["feature"] for row in job.importance["features"]} == {"age", "income", "score"}
    assert len(job.sha256) == 64
    body = client_for(personas.viewer).get(url(2)).json()["results"][0]
    assert body["status"] == "succeeded" and body["champion"] == 1
    assert body["report"]["metrics"]["accuracy"] == job.report["metrics"]["accuracy"]
    assert AuditEvent.objects.filter(action="lifecycle.evaluation.completed").count() == 1


def test_missing_columns_are_refused_before_queueing(model, personas):
    ready_version(model, personas.bot)
    narrow = registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="narrow",
        role="evaluation",
        upload=io.BytesIO(csv_bytes(training_frame().drop(columns=["income"]))),
        filename="n.csv",
    )
    response = client_for(personas.bot).post(
        url(), {"dataset": narrow.pk, "target_column": "label"}, format="json"
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert details["missing_columns"] == ["income"]
    assert details["problems"] == [
        {"column": "income", "message": "the signature's input 'income' is missing"}
    ]
    assert not Evaluation.objects.exists()


def test_a_dataset_whose_types_differ_from_the_signature_is_refused(model, personas):
    ready_version(model, personas.bot)
    frame = training_frame()
    frame["income"] = "high"  # text where the signature has a number
    wrong = registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="wrong-types",
        role="evaluation",
        upload=io.BytesIO(csv_bytes(frame)),
        filename="w.csv",
    )
    response = client_for(personas.bot).post(
        url(), {"dataset": wrong.pk, "target_column": "label"}, format="json"
    )
    assert response.status_code == 400
    assert "'income' is" in response.json()["error"]["message"]
    assert not Evaluation.objects.exists()


def test_bad_values_fail_the_job_for_good_with_the_reason(model, personas):
    ready_version(model, personas.bot)
    frame = training_frame()
    frame["label"] = frame["label"].astype(float)
    frame.loc[3, "label"] = None
    dataset = registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="holes",
        role="evaluation",
        upload=io.BytesIO(csv_bytes(frame)),
        filename="h.csv",
    )
    job = services.evaluation_start(
        actor=personas.bot, version=model.versions.get(), dataset=dataset, target_column="label"
    )
    job = run(job)
    assert job.status == "failed" and job.attempts == 1
    assert "missing values" in job.error


def test_who_may_evaluate(model, personas, dataset):
    ready_version(model, personas.bot)
    body = {"dataset": dataset.pk, "target_column": "label"}
    assert client_for(None).post(url(), body, format="json").status_code == 401
    assert client_for(personas.outsider).post(url(), body, format="json").status_code == 404
    assert client_for(personas.viewer).post(url(), body, format="json").status_code == 403
    approver = grant(model, personas.validator, "approver")
    assert client_for(approver).post(url(), body, format="json").status_code == 202
    assert client_for(personas.outsider).get(url()).status_code == 404


def test_a_pending_version_is_not_evaluated(model, personas, dataset):
    from tests.conftest import register

    version = register(model, personas.bot)
    with pytest.raises(Exception, match="only ready versions"):
        services.evaluation_start(
            actor=personas.bot, version=version, dataset=dataset, target_column="label"
        )


def test_the_version_page_shows_the_evaluation(model, personas, dataset):
    from django.test import Client

    ready_version(model, personas.bot)
    job = services.evaluation_start(
        actor=personas.bot, version=model.versions.get(), dataset=dataset, target_column="label"
    )
    run(job)
    client = Client()
    client.force_login(personas.viewer)
    html = client.get("/models/credit/versions/1/").content.decode()
    assert 'id="evaluation-metrics"' in html and 'id="importance"' in html
    assert (
        'target <span class="mono">label</span>, positive class <span class="mono">1</span>' in html
    )
    assert "No champion to compare with." in html


def test_a_claimed_job_is_not_run_twice(model, personas, dataset):
    ready_version(model, personas.bot)
    job = services.evaluation_start(
        actor=personas.bot, version=model.versions.get(), dataset=dataset, target_column="label"
    )
    assert job_claim(Evaluation, job.pk) is not None
    heavy_evaluate.run(job.pk)  # a duplicate delivery while the first attempt runs
    assert Evaluation.objects.get(pk=job.pk).status == "running"


def test_an_evaluation_is_judged_by_frozen_thresholds_and_filed_as_evidence(
    model, personas, dataset, filed, policy
):
    ready_version(model, personas.bot)
    policy["evaluation_report"] = {"accuracy": {"min": 0.5}, "roc_auc": {"min": 0.999}}
    response = client_for(personas.bot).post(
        url(), {"dataset": dataset.pk, "target_column": "label"}, format="json"
    )
    policy["evaluation_report"] = {}  # a later policy change does not re-judge this job
    job = run(Evaluation.objects.get(pk=response.json()["id"]))
    assert job.thresholds == {"accuracy": {"min": 0.5}, "roc_auc": {"min": 0.999}}
    assert job.passed is False
    assert job.threshold_failures == [
        {
            "metric": "roc_auc",
            "value": job.report["metrics"]["roc_auc"],
            "reason": "below the minimum 0.999",
        }
    ]
    report, importance = filed
    assert (report.kind, report.sha256, report.passed) == ("evaluation_report", job.sha256, False)
    assert "roc_auc below the minimum 0.999" in report.summary
    assert importance.kind == "explainability" and importance.passed is None
    assert len(importance.sha256) == 64 and importance.source == f"lifecycle.evaluation:{job.pk}"


def test_a_metric_the_policy_bounds_but_the_report_cannot_compute_fails():
    from lifecycle.evaluation import judge_thresholds

    assert judge_thresholds({"accuracy": 0.9, "roc_auc": None}, {"roc_auc": {"min": 0.7}}) == [
        {"metric": "roc_auc", "value": None, "reason": "not computed"}
    ]
    assert judge_thresholds({"rmse": 3.0}, {"rmse": {"max": 2.5}})[0]["reason"] == (
        "above the maximum 2.5"
    )
    assert judge_thresholds({"accuracy": 0.9}, {"accuracy": {"min": 0.9}}) == []
