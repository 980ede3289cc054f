"""Retraining through real Celery worker processes, on the configured database and broker.

A worker killed with SIGKILL in the middle of a fit, a run that keeps dying, and a
drift alert that ends, with no one touching anything, as a candidate in review.
"""

from __future__ import annotations

import datetime as dt
import signal

import pandas as pd
import pyarrow as pa
import pytest
from django.utils import timezone
from sklearn.ensemble import RandomForestClassifier

from common.jobs import requeue_stale_jobs
from common.models import AuditEvent
from governance.models import Review
from lifecycle import retraining
from lifecycle.models import RetrainingRun
from monitoring import services as monitoring_services
from registry.models import ModelVersion
from tests.conftest import ready_version, start_worker, stop_worker, training_frame, wait_for
from tests.lifecycle.retraining_support import fitted_bytes, upload_dataset
from tests.monitoring.conftest import prediction_frame

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def slow_parent(model, personas):
    """A forest whose refit takes a few seconds, with its training data."""
    frame = training_frame(2500, seed=5)
    dataset = upload_dataset(model, personas.bot, frame)
    return ready_version(
        model,
        personas.bot,
        artifact=fitted_bytes(RandomForestClassifier(n_estimators=250, random_state=0), frame),
        training_dataset=dataset,
        target_column="label",
    )


@pytest.fixture
def parent(model, personas):
    dataset = upload_dataset(model, personas.bot, training_frame(600, seed=3))
    return ready_version(model, personas.bot, training_dataset=dataset, target_column="label")


def run_row(pk: int) -> RetrainingRun:
    return RetrainingRun.objects.get(pk=pk)


def fitting(pk: int, attempt: int) -> bool:
    run = run_row(pk)
    return run.status == "running" and run.attempts == attempt and "fitting:" in run.log


def kill_mid_fit(worker_env, tmp_path, pk: int, attempt: int) -> None:
    worker = start_worker(worker_env, tmp_path / f"attempt-{attempt}.log")
    try:
        wait_for(lambda: fitting(pk, attempt), timeout=60, interval=0.05, message="the fit")
        stop_worker(worker, signal.SIGKILL)  # the whole worker, mid-fit: no ack, no cleanup
    finally:
        stop_worker(worker)


def sweep_once() -> dict[str, int]:
    """Beat's stale-job sweep, run here as soon as the dead attempt's heartbeat is stale."""
    return wait_for(
        lambda: (c := requeue_stale_jobs())["requeued"] + c["failed"] and c,
        timeout=30,
        message="the sweep",
    )


def test_a_worker_killed_mid_fit_is_replaced_and_exactly_one_version_exists(
    worker_env, tmp_path, model, personas, slow_parent, settings
):
    settings.JOB_STALE_AFTER_SECONDS = 2
    run = retraining.retraining_run_request(actor=personas.owner, model=model)
    kill_mid_fit(worker_env, tmp_path, run.pk, attempt=1)
    assert ModelVersion.objects.filter(registered_model=model).count() == 1
    assert sweep_once()["requeued"] == 1

    second = start_worker(worker_env, tmp_path / "second.log")
    try:
        done = wait_for(
            lambda: run_row(run.pk).status == "succeeded", timeout=120, message="the retry"
        )
        assert done
        # The candidate's validation runs on the same worker.
        wait_for(
            lambda: ModelVersion.objects.filter(number=2, status="ready").exists(),
            timeout=60,
            message="the candidate validated",
        )
    finally:
        stop_worker(second)
    run = run_row(run.pk)
    assert run.attempts == 2 and run.version.number == 2
    assert ModelVersion.objects.filter(registered_model=model).count() == 2
    assert run.log.count("fitting:") == 2 and "attempt 2:" in run.log


def test_a_run_that_keeps_dying_fails_with_the_reason_after_the_attempt_cap(
    worker_env, tmp_path, model, personas, slow_parent, settings
):
    settings.JOB_STALE_AFTER_SECONDS = 2
    settings.JOB_MAX_ATTEMPTS = 2
    worker_env = {**worker_env, "JOB_MAX_ATTEMPTS": "2"}
    run = retraining.retraining_run_request(actor=personas.owner, model=model)
    kill_mid_fit(worker_env, tmp_path, run.pk, attempt=1)
    assert sweep_once()["requeued"] == 1
    kill_mid_fit(worker_env, tmp_path, run.pk, attempt=2)
    assert sweep_once()["failed"] == 1
    run = run_row(run.pk)
    assert run.status == "failed" and run.attempts == 2
    assert run.error == "The worker running this job was lost too many times."
    assert run.version_id is None and run.outcome == "pending"
    assert ModelVersion.objects.filter(registered_model=model).count() == 1
    failed = AuditEvent.objects.get(action="lifecycle.retraining_run.failed")
    assert failed.object_id == str(run.pk) and "lost too many times" in failed.after["error"]
    # The model is free again: the next request is accepted.
    assert retraining.retraining_run_request(actor=personas.owner, model=model, force=True)


def test_a_drift_alert_ends_as_a_candidate_in_review_with_no_one_touching_it(
    celery_worker, model, personas, parent
):
    retraining.retraining_policy_set(
        actor=personas.owner,
        model=model,
        on_alert=True,
        auto_submit=True,
        production_window_hours=24,
    )
    monitor = monitoring_services.monitor_create(
        actor=personas.owner,
        model=model,
        version=parent,
        name="drift",
        checks=["drift"],
        request_retraining=True,
    )
    start = timezone.now() - dt.timedelta(hours=2)
    rows = prediction_frame(400, seed=9, shift=2.0, start=start.strftime("%Y-%m-%dT%H:%M:%S"))
    monitoring_services.prediction_batch_ingest(
        actor=personas.bot,
        version=parent,
        batch_id="shifted",
        table=pa.Table.from_pandas(rows, preserve_index=False),
    )
    labels = pd.DataFrame({"request_id": rows["request_id"], "label": rows["prediction"]})
    monitoring_services.label_batch_ingest(
        actor=personas.bot,
        model=model,
        batch_id="shifted-labels",
        table=pa.Table.from_pandas(labels, preserve_index=False),
    )
    monitoring_services.check_run_request(actor=personas.owner, monitor=monitor)

    review = wait_for(
        lambda: Review.objects.filter(
            version__registered_model=model, version__number=2, state="in_review"
        ).first(),
        timeout=120,
        message="the candidate in review",
    )
    run = RetrainingRun.objects.get()
    assert run.trigger == "alert" and run.alert.monitor == monitor
    assert run.outcome == "candidate_submitted" and run.version == review.version
    assert run.data_record["inputs"]["production"]["rows"] == 400
    assert review.version.created_by is None
    assert "lifecycle.tasks.heavy_retrain" in celery_worker.output()
    wait_for(
        lambda: run.version.evaluations.filter(status="succeeded").exists(),
        timeout=60,
        message="the candidate's evaluation",
    )
