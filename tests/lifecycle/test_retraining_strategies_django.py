"""Strategies through the Django layer: what each needs from the registry and monitoring
(production rows for online, a failed audit's dataset for mitigation, a forest for warm start)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier

from governance import fairness_audits
from governance.models import FairnessAudit, Review
from governance.tasks import heavy_fairness_audit
from lifecycle import retraining
from lifecycle.models import RetrainingRun
from tests.conftest import client_for, ready_version
from tests.evidence_support import audit_frame, upload
from tests.lifecycle.retraining_support import (
    complete,
    execute,
    fitted_bytes,
    post_traffic,
    upload_dataset,
)

pytestmark = pytest.mark.django_db


def test_online_learns_from_the_labelled_production_rows_of_the_window(model, personas, training):
    sgd = ready_version(
        model,
        personas.bot,
        artifact=fitted_bytes(SGDClassifier(loss="log_loss", random_state=0)),
        training_dataset=training,
        target_column="label",
    )
    start = (timezone.now() - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    post_traffic(sgd, personas.bot, n=600, seed=21, start=start)
    old = (timezone.now() - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
    post_traffic(sgd, personas.bot, n=200, seed=22, start=old)  # outside the window
    retraining.retraining_policy_set(
        actor=personas.owner,
        model=model,
        strategy="online",
        params={"chunk_size": 100},
        production_window_hours=24,
    )
    run = execute(retraining.retraining_run_request(actor=personas.owner, model=model))
    assert run.status == "succeeded", run.error
    record = run.data_record
    assert record["inputs"]["production"]["rows"] == 600  # the old batch is out of the window
    assert (
        record["holdout"]["from"] == "production" and record["holdout"]["rows"]["production"] == 120
    )
    online = run.training_record["online"]
    assert online["rows_learned"] == 480 and online["chunks"] == 5
    assert len(online["progressive_validation"]["running"]) == 5
    assert run.training_record["classes_after"] == [0, 1]
    assert run.version.parent == sgd


def test_a_failed_fairness_audit_is_mitigated_through_the_same_door(model, personas):
    dataset = upload(model, personas.bot, audit_frame(1500))
    parent = ready_version(
        model,
        personas.bot,
        artifact=fitted_bytes(LogisticRegression(max_iter=300), audit_frame(1500)),
        training_dataset=dataset,
        target_column="label",
    )
    audit = fairness_audits.fairness_audit_start(
        actor=personas.bot,
        version=parent,
        dataset=dataset,
        target_column="label",
        sensitive_columns=["sex"],
    )
    heavy_fairness_audit.run(audit.pk)
    audit.refresh_from_db()
    assert audit.passed is False
    refused = client_for(personas.bot).post(
        "/api/v1/models/credit/retrain/", {"fairness_audit": audit.pk}, format="json"
    )
    assert refused.status_code == 403  # as for governance's mitigations: the owner only
    response = client_for(personas.owner).post(
        "/api/v1/models/credit/retrain/",
        {"fairness_audit": audit.pk, "params": {"method": "threshold_optimizer"}},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["strategy"] == "fairness_mitigation" and body["fairness_audit"] == audit.pk
    assert (
        body["params"]["sensitive_columns"] == ["sex"]
        and body["training_dataset"]["id"] == dataset.pk
    )
    run = complete(RetrainingRun.objects.get(pk=body["id"]))
    assert run.version.status == "ready", run.version.status_reason
    assert run.version.estimator.endswith("GroupThresholdClassifier")
    # Its own fairness audit follows, by the same sensitive column, on rows that hold it.
    follow_up = FairnessAudit.objects.get(version=run.version)
    assert follow_up.sensitive_columns == ["sex"] and run.follow_up_audit == follow_up
    assert Review.objects.filter(version=run.version).exists() == (
        run.outcome == "candidate_submitted"
    )


def test_warm_start_grows_the_parents_forest(model, personas, training):
    forest = ready_version(
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
    assert run.training_record["warm_start"]["total"] == 15
    assert run.version.hyperparameters["n_estimators"] == 15
    assert forest.hyperparameters["n_estimators"] == 10


def test_mitigating_an_audit_fits_the_parents_training_data_and_judges_the_audited_rows(
    model, personas
):
    """Both doors agree: with training data of its own, a mitigation is fitted on it and
    judged on the audited rows (never on the rows it was fitted on), no hold-out drawn."""
    train = upload_dataset(model, personas.bot, audit_frame(1500, seed=3), name="train-data")
    audited = upload(model, personas.bot, audit_frame(1500, seed=8), name="audited")
    parent = ready_version(
        model,
        personas.bot,
        artifact=fitted_bytes(LogisticRegression(max_iter=300), audit_frame(1500, seed=3)),
        training_dataset=train,
        target_column="label",
    )
    audit = fairness_audits.fairness_audit_start(
        actor=personas.bot,
        version=parent,
        dataset=audited,
        target_column="label",
        sensitive_columns=["sex"],
    )
    heavy_fairness_audit.run(audit.pk)
    audit.refresh_from_db()
    assert audit.passed is False
    owner = client_for(personas.owner)
    body = owner.post(
        "/api/v1/models/credit/retrain/", {"fairness_audit": audit.pk}, format="json"
    ).json()
    assert body["training_dataset"]["id"] == train.pk
    assert body["evaluation_dataset"]["id"] == audited.pk and body["holdout_fraction"] == 0.0
    run = execute(RetrainingRun.objects.get(pk=body["id"]))
    assert run.status == "succeeded", run.error
    assert run.version.training_dataset == train and run.holdout_dataset is None
    assert run.comparison["compared_on"] == f"evaluation dataset {audited}"
    # Naming the audited rows as training data: they cannot also judge it; a hold-out does.
    body = owner.post(
        "/api/v1/models/credit/retrain/",
        {"fairness_audit": audit.pk, "training_dataset": audited.pk, "force": True},
        format="json",
    ).json()
    assert body["training_dataset"]["id"] == audited.pk
    assert body["evaluation_dataset"] is None and body["holdout_fraction"] == 0.2


def test_a_policys_sensitive_columns_have_every_candidate_audited_on_held_out_rows(
    model, personas
):
    """The issue's "a fairness audit when the model has sensitive features configured":
    a refit of a never-audited parent is audited by the policy's columns on held-out
    rows that hold them, though the model does not read them."""
    frame = audit_frame(1500, seed=3)
    train = upload_dataset(model, personas.bot, frame, name="train-data")
    ready_version(
        model,
        personas.bot,
        artifact=fitted_bytes(LogisticRegression(max_iter=300), frame),
        training_dataset=train,
        target_column="label",
    )
    retraining.retraining_policy_set(actor=personas.owner, model=model, sensitive_columns=["sex"])
    run = complete(retraining.retraining_run_request(actor=personas.owner, model=model))
    audit = run.follow_up_audit
    assert audit is not None, run.outcome_reason
    assert audit.version == run.version and audit.sensitive_columns == ["sex"]
    assert audit.dataset != train  # never the rows the candidate was fitted on
    assert audit.dataset.sha256 != run.version.training_dataset.sha256
    assert "sex" not in run.version.feature_names
