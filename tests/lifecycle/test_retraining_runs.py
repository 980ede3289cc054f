"""Retraining runs through the Django layer: one candidate per run, registered by the run,
compared with the champion, followed by its evidence and its review."""

from __future__ import annotations

import io

import numpy as np
import pytest
import sklearn
from django.db import IntegrityError, transaction
from sklearn.metrics import accuracy_score, roc_auc_score

from common.jobs import JobLost
from common.models import AuditEvent
from common.storage import cached_blob_path
from governance import reviews
from governance.models import Review
from lifecycle import retraining, training_data
from lifecycle.models import Evaluation, RetrainingRun
from registry import services as registry_services
from registry.artifacts import load_estimator
from registry.models import Dataset, ModelVersion
from registry.tables import read_table
from tests.conftest import FEATURES, ready_version, register, validate
from tests.lifecycle.retraining_support import (
    claim,
    complete,
    execute,
    weak_bytes,
)

pytestmark = pytest.mark.django_db


def request(model, actor, **given) -> RetrainingRun:
    return retraining.retraining_run_request(actor=actor, model=model, **given)


def frame_of(dataset: Dataset):
    with cached_blob_path(dataset.storage_key) as path:
        return read_table(path)


def estimator_of(version: ModelVersion):
    with cached_blob_path(version.artifact_key) as path:
        return load_estimator(path)[0]


def test_a_refit_registers_one_candidate_whose_lineage_says_what_it_was_trained_on(
    model, personas, parent, training
):
    run = execute(request(model, personas.owner, reason="quarterly refresh"))
    assert run.status == "succeeded", run.error
    version = run.version
    assert ModelVersion.objects.filter(registered_model=model).count() == 2
    assert version.parent == parent and version.source_run_id == f"retraining-run-{run.pk}"
    # Registered by the run (a system actor), not by whoever asked for it.
    assert version.created_by is None and run.requested_by == personas.owner
    assert AuditEvent.objects.get(
        action="registry.version.registered", object_id=str(version.pk)
    ).actor == (f"system:lifecycle.retraining_run#{run.pk}")
    # The version's training dataset is exactly the rows it was trained on, and its digest
    # is the one the run recorded; the hold-out is stored beside it.
    trained = frame_of(version.training_dataset)
    assert len(trained) == 480 and version.training_dataset.created_by is None
    assert training_data.frame_digest(trained) == run.data_record["train"]["sha256"]
    assert (
        training_data.frame_digest(frame_of(run.holdout_dataset))
        == (run.data_record["holdout"]["sha256"])
    )
    assert run.data_record["inputs"]["dataset"]["sha256"] == training_data.frame_digest(
        frame_of(training)
    )
    assert run.environment["scikit_learn"] == sklearn.__version__
    assert run.environment["numpy"] == np.__version__
    assert run.environment["seeds"]["run"] == run.seed == 0
    assert run.training_record["strategy"] == "refit" and run.training_record["rows"] == 480


def test_the_candidates_metrics_are_scikit_learns_on_the_hold_out(model, personas, parent):
    run = execute(request(model, personas.owner))
    holdout = frame_of(run.holdout_dataset)
    candidate = estimator_of(run.version)
    X, y = holdout[FEATURES], holdout["label"]
    assert run.version.metrics["accuracy"] == pytest.approx(accuracy_score(y, candidate.predict(X)))
    assert run.version.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(y, candidate.predict_proba(X)[:, 1])
    )
    # The parent on the same rows, for "what changed".
    assert run.comparison["parent_metrics"]["accuracy"] == pytest.approx(
        accuracy_score(y, estimator_of(parent).predict(X))
    )


def test_a_ready_candidate_is_submitted_for_review_with_its_evaluation_queued(
    model, personas, parent
):
    run = complete(request(model, personas.owner))
    assert run.outcome == "candidate_submitted"
    review = Review.objects.get(version=run.version)
    assert review.state == "in_review" and review.submitted_by is None
    evaluation = Evaluation.objects.get(version=run.version)
    assert evaluation.dataset == run.holdout_dataset and evaluation.requested_by is None
    assert run.evaluation == evaluation
    # The owner asked for the run but did not register the candidate: the owner may sign.
    signoff = reviews.signoff_record(
        actor=personas.owner, version=run.version, decision="approve", meaning="reviewed"
    )
    assert signoff.role == "owner"
    actions = list(
        AuditEvent.objects.filter(object_type="lifecycle.retrainingrun", object_id=str(run.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "lifecycle.retraining_run.requested",
        "lifecycle.retraining_run.awaiting_validation",
        "lifecycle.retraining_run.candidate_registered",
        "lifecycle.retraining_run.candidate_submitted",
        "lifecycle.retraining_run.followed_up",
    ]


def test_the_follow_up_runs_once_however_often_the_ready_event_arrives(model, personas, parent):
    run = complete(request(model, personas.owner))
    assert retraining.retraining_follow_up(version_id=run.version_id) is None
    assert retraining.retraining_follow_up_sweep() == 0
    assert Evaluation.objects.filter(version=run.version).count() == 1


def test_a_policy_without_auto_submit_leaves_the_candidate_ready(model, personas, parent):
    retraining.retraining_policy_set(actor=personas.owner, model=model, auto_submit=False)
    run = complete(request(model, personas.owner))
    assert run.outcome == "candidate_ready"
    assert "does not submit automatically" in run.outcome_reason
    assert not Review.objects.filter(version=run.version).exists()


def test_a_candidate_worse_than_the_champion_is_kept_but_never_submitted(model, personas, training):
    champion = ready_version(model, personas.bot, training_dataset=training, target_column="label")
    registry_services.alias_set(
        actor=personas.owner, model=model, name="champion", version_number=champion.number
    )
    weak = ready_version(
        model, personas.bot, artifact=weak_bytes(), training_dataset=training, target_column="label"
    )
    retraining.retraining_policy_set(
        actor=personas.owner, model=model, primary_metric="accuracy", tolerance=0.01
    )
    run = complete(request(model, personas.owner, parent=weak))
    assert run.outcome == "rejected_by_champion"
    figures = run.comparison
    assert figures["verdict"] == "rejected_by_champion" and figures["champion_version"] == 1
    assert figures["champion"] - figures["challenger"] > 0.01
    assert f"worse by {figures['worse_by']:.4f} > tolerance 0.01" in run.outcome_reason
    assert run.version.status == "ready"  # recorded ...
    assert not Review.objects.filter(version=run.version).exists()  # ... not submitted
    assert Evaluation.objects.filter(version=run.version).exists()  # the evidence still comes


def test_a_candidate_the_registry_refuses_marks_the_run_version_failed(model, personas, parent):
    run = execute(request(model, personas.owner))
    ModelVersion.objects.filter(pk=run.version_id).update(status="failed", status_reason="broken")
    retraining.retraining_follow_up(version_id=run.version_id)
    run.refresh_from_db()
    assert run.outcome == "version_failed" and "broken" in run.outcome_reason


def test_an_attempt_that_lost_its_claim_registers_nothing_and_the_retry_registers_one(
    model, personas, parent
):
    run = request(model, personas.owner)
    first = claim(run)
    # The sweep gave the run up as dead and a second worker claimed it.
    RetrainingRun.objects.filter(pk=run.pk).update(status="queued")
    second = claim(run)
    assert second.attempts == 2
    with pytest.raises(JobLost):
        retraining.retraining_run_execute(job=first)
    assert ModelVersion.objects.filter(registered_model=model).count() == 1
    retraining.retraining_run_execute(job=second)
    assert ModelVersion.objects.filter(registered_model=model).count() == 2
    assert RetrainingRun.objects.get(pk=run.pk).version.number == 2


def test_a_loss_between_registering_and_finishing_rolls_the_version_back(
    model, personas, parent, monkeypatch
):
    """The worst moment to lose a worker: the version row exists, the outcome is not
    recorded. Both are in one transaction with job_finish, so nothing stays."""
    run = request(model, personas.owner)
    job = claim(run)
    real = registry_services.model_version_register

    def register_then_lose_the_claim(**kwargs):
        version = real(**kwargs)
        RetrainingRun.objects.filter(pk=run.pk).update(attempts=job.attempts + 1)
        return version

    monkeypatch.setattr(registry_services, "model_version_register", register_then_lose_the_claim)
    with pytest.raises(JobLost):
        retraining.retraining_run_execute(job=job)
    assert ModelVersion.objects.filter(registered_model=model).count() == 1
    assert not Dataset.objects.filter(name__startswith="retraining-").exists()
    assert RetrainingRun.objects.get(pk=run.pk).version_id is None


def test_a_run_never_gets_a_second_version(model, personas, parent):
    run = execute(request(model, personas.owner))
    other = validate(register(model, personas.bot))
    with pytest.raises(IntegrityError), transaction.atomic():  # one-to-one: unique
        RetrainingRun.objects.create(
            registered_model=model,
            trigger="request",
            strategy="refit",
            parent=parent,
            target_column="label",
            primary_metric="roc_auc",
            status="succeeded",
            version=run.version,
        )
    assert RetrainingRun.objects.filter(pk=run.pk, version__isnull=True).update(version=other) == 0


def test_data_without_the_target_fails_the_run_at_once_naming_the_column(model, personas, parent):
    run = request(model, personas.owner)
    # The dataset lost its target after the request (a stored file replaced by hand).
    narrow = registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="narrow",
        role="training",
        upload=io.BytesIO(
            frame_of(run.training_dataset).drop(columns=["label"]).to_csv(index=False).encode()
        ),
        filename="n.csv",
    )
    RetrainingRun.objects.filter(pk=run.pk).update(training_dataset=narrow)
    run = execute(run)
    assert run.status == "failed" and run.attempts == 1
    assert run.error == "The target column 'label' is missing from the training dataset."
    assert "fitting" not in run.log
    assert AuditEvent.objects.filter(action="lifecycle.retraining_run.failed").count() == 1
