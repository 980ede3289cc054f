"""End to end through a real Celery worker process, on the configured database and broker.

In CI that is PostgreSQL and Redis; with no environment it is SQLite and the
filesystem transport: the same code paths either way.
"""

from __future__ import annotations

import io
import json
import signal

import pytest

from common.jobs import requeue_stale_jobs
from registry.models import ModelVersion, RegistrationJob
from tests.conftest import (
    SIGNATURE,
    client_for,
    start_worker,
    stop_worker,
    training_frame,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def post_artifact(client, data: bytes, metadata: dict | None = None):
    handle = io.BytesIO(data)
    handle.name = "model.skops"
    payload = {
        "artifact": handle,
        "metadata": json.dumps(metadata or {"signature": {"inputs": SIGNATURE}}),
    }
    return client.post("/api/v1/models/credit/versions/", payload, format="multipart")


def status_of(number: int) -> str:
    return ModelVersion.objects.get(registered_model__name="credit", number=number).status


def test_a_registration_is_validated_by_the_worker(celery_worker, model, personas):
    from tests.conftest import classifier_bytes

    client = client_for(personas.bot)
    assert post_artifact(client, classifier_bytes()).status_code == 202
    assert post_artifact(client, b"\x80\x04not really a model").status_code == 202
    wait_for(lambda: status_of(1) == "ready", message="v1 ready")
    wait_for(lambda: status_of(2) == "failed", message="v2 failed")
    v1 = client.get("/api/v1/models/credit/versions/1/").json()
    assert v1["estimator"].endswith("LogisticRegression")
    assert v1["signature"]["output"]["kind"] == "label"
    v2 = client.get("/api/v1/models/credit/versions/2/").json()
    assert "pickle" in v2["status_reason"]
    assert "registry.tasks.validate_version" in celery_worker.output()


@pytest.fixture(scope="module")
def slow_artifact() -> bytes:
    """A forest large enough that validating it takes a few seconds."""
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    frame = training_frame(300)
    forest = RandomForestClassifier(n_estimators=3000, max_depth=3, random_state=0, n_jobs=2)
    return sio.dumps(forest.fit(frame[["age", "income", "score"]], frame["label"]))


def test_a_job_survives_its_worker_being_killed(
    worker_env, tmp_path, model, personas, settings, slow_artifact
):
    settings.JOB_STALE_AFTER_SECONDS = 2
    first = start_worker(worker_env, tmp_path / "first.log")
    try:
        assert post_artifact(client_for(personas.bot), slow_artifact).status_code == 202
        job = RegistrationJob.objects.get(version__number=1)
        wait_for(
            lambda: RegistrationJob.objects.get(pk=job.pk).status == "running",
            timeout=60,
            interval=0.05,
            message="the job to start",
        )
        stop_worker(first, signal.SIGKILL)  # the whole worker, mid-job: no ack, no cleanup
    finally:
        stop_worker(first)
    assert status_of(1) == "pending"
    assert RegistrationJob.objects.get(pk=job.pk).status == "running"

    second = start_worker(worker_env, tmp_path / "second.log")
    try:
        # beat runs this sweep every two minutes; here we run it as soon as the
        # dead attempt's heartbeat is stale
        wait_for(lambda: requeue_stale_jobs()["requeued"] == 1, timeout=30, message="the sweep")
        wait_for(lambda: status_of(1) == "ready", timeout=120, message="v1 ready after requeue")
    finally:
        stop_worker(second)
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert job.attempts == 2


def test_an_evaluation_runs_on_the_heavy_queue(celery_worker, model, personas):
    from lifecycle.models import Evaluation
    from registry import services
    from tests.conftest import csv_bytes, ready_version

    ready_version(model, personas.bot)
    dataset = services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="holdout",
        role="evaluation",
        upload=io.BytesIO(csv_bytes(training_frame(300, seed=4))),
        filename="h.csv",
    )
    response = client_for(personas.bot).post(
        "/api/v1/models/credit/versions/1/evaluations/",
        {"dataset": dataset.pk, "target_column": "label"},
        format="json",
    )
    assert response.status_code == 202
    job = wait_for(
        lambda: Evaluation.objects.filter(pk=response.json()["id"], status="succeeded").first(),
        message="the evaluation",
    )
    assert job.report["rows"] == 300
    assert "lifecycle.tasks.heavy_evaluate" in celery_worker.output()


def test_a_fairness_audit_and_its_mitigation_run_on_the_worker(celery_worker, model, personas):
    """Audit, mitigation, the candidate's validation, its follow-up audit and evaluation:
    five jobs chained by the worker alone (the last two through the registry's ready
    event)."""
    from governance.models import FairnessAudit, MitigationRun
    from lifecycle.models import Evaluation
    from tests.conftest import ready_version
    from tests.evidence_support import audit_frame, upload

    train = upload(model, personas.bot, audit_frame(1500), name="train-data")
    ready_version(model, personas.bot, training_dataset=train, target_column="label")
    dataset = upload(model, personas.bot, audit_frame(1500, seed=8))
    response = client_for(personas.bot).post(
        "/api/v1/models/credit/versions/1/fairness-audits/",
        {"dataset": dataset.pk, "target_column": "label", "sensitive_features": ["sex"]},
        format="json",
    )
    assert response.status_code == 202
    audit = wait_for(
        lambda: FairnessAudit.objects.filter(pk=response.json()["id"], status="succeeded").first(),
        message="the fairness audit",
    )
    assert audit.passed is False
    response = client_for(personas.owner).post(
        f"/api/v1/models/credit/versions/1/fairness-audits/{audit.pk}/mitigations/",
        {"method": "threshold_optimizer"},
        format="json",
    )
    assert response.status_code == 202
    run = wait_for(
        lambda: MitigationRun.objects.filter(
            pk=response.json()["id"], follow_up__status="succeeded"
        ).first(),
        message="the mitigation and its follow-up audit",
    )
    assert run.candidate.status == "ready" and run.follow_up.version == run.candidate
    assert run.candidate.training_dataset == train and run.follow_up.dataset == dataset
    evaluation = wait_for(
        lambda: Evaluation.objects.filter(version=run.candidate, status="succeeded").first(),
        message="the candidate's evaluation",
    )
    assert evaluation.dataset == dataset
    assert "governance.tasks.heavy_mitigate" in celery_worker.output()
