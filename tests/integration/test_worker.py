"""End to end through a real Celery worker process, on the configured database and broker.

In CI that is PostgreSQL and Redis; with no environment it is SQLite and the
filesystem transport: the same code paths either way.
"""

from __future__ import annotations

import io
import json

import pytest

from registry.models import ModelVersion
from tests.conftest import (
    SIGNATURE,
    client_for,
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
    """Audit, mitigation (a retraining run), the candidate's validation, its follow-up
    audit and evaluation: five jobs chained by the worker alone (the last two through
    the registry's ready event and the run's follow-up)."""
    from governance.models import FairnessAudit
    from lifecycle.models import Evaluation, RetrainingRun
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
    assert response.json()["strategy"] == "fairness_mitigation"
    run = wait_for(
        lambda: RetrainingRun.objects.filter(
            pk=response.json()["id"], follow_up_audit__status="succeeded"
        ).first(),
        message="the mitigation run and its follow-up audit",
    )
    candidate = run.version
    assert candidate.status == "ready" and run.follow_up_audit.version == candidate
    assert candidate.training_dataset == train and run.follow_up_audit.dataset == dataset
    evaluation = wait_for(
        lambda: Evaluation.objects.filter(version=candidate, status="succeeded").first(),
        message="the candidate's evaluation",
    )
    assert evaluation.dataset == dataset and run.evaluation_id == evaluation.pk
    assert "lifecycle.tasks.heavy_retrain" in celery_worker.output()


def test_an_upload_never_waits_on_the_drift_baseline_the_worker_builds_and_applies_it(
    celery_worker, model, personas, settings
):
    """The ready event queues the baseline build; a batch posted before it exists is
    stored at once, without summaries, and summarized by the build."""
    import pyarrow as pa

    from common.jobs import requeue_stale_jobs
    from monitoring import services as monitoring_services
    from monitoring.models import PredictionBatch, ProfileBuild, ReferenceProfile
    from tests.conftest import ready_version
    from tests.monitoring.conftest import prediction_frame, upload_training

    dataset = upload_training(model, personas.owner)
    with pytest.MonkeyPatch.context() as mp:  # the worker is busy elsewhere for now
        mp.setattr("common.jobs._send", lambda job, countdown=None: None)
        version = ready_version(
            model, personas.owner, training_dataset=dataset, target_column="label"
        )
        batch, _ = monitoring_services.prediction_batch_ingest(
            actor=personas.bot,
            version=version,
            batch_id="early",
            table=pa.Table.from_pandas(prediction_frame(300), preserve_index=False),
        )
    assert batch.summary == {} and not ReferenceProfile.objects.exists()
    build = ProfileBuild.objects.get(version=version)  # one build, queued by the ready event
    settings.JOB_RESEND_AFTER_SECONDS = 0
    assert requeue_stale_jobs()["resent"] == 1  # its message goes out now
    wait_for(
        lambda: PredictionBatch.objects.get(pk=batch.pk).summary,
        timeout=90,
        message="the baseline build and its summary of the early batch",
    )
    assert ProfileBuild.objects.get(pk=build.pk).status == "succeeded"
    assert ReferenceProfile.objects.filter(version=version).count() == 1
    assert "monitoring.tasks.heavy_build_profile" in celery_worker.output()
