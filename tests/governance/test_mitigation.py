"""Mitigation: fairlearn's mitigators as storable versions, and the door on a failed
audit (``.../fairness-audits/{id}/mitigations/``), which queues a retraining run with the
``fairness_mitigation`` strategy: it registers a candidate fitted on the training data,
has the registry validate it, then evaluates and audits it again on the audited rows."""

from __future__ import annotations

import io
import tempfile

import numpy as np
import pytest
import skops.io as sio
from fairlearn.postprocessing import ThresholdOptimizer
from fairlearn.reductions import DemographicParity, ExponentiatedGradient
from sklearn.linear_model import LogisticRegression

from common import jobs
from common.models import AuditEvent
from common.storage import cached_blob_path
from demo import samples
from governance.estimators import THRESHOLD_OBJECTIVE, TRUSTED_TYPES, mitigated_estimator
from governance.fairness import FairnessInputError
from governance.models import FairnessAudit
from governance.tasks import heavy_fairness_audit
from lifecycle import retraining
from lifecycle.models import Evaluation, RetrainingRun
from lifecycle.tasks import heavy_evaluate, heavy_retrain
from registry import services as registry_services
from registry.artifacts import check_types, inspect_artifact, load_estimator
from registry.models import ModelVersion
from registry.tables import read_table
from tests.conftest import client_for, csv_bytes, ready_version, validate
from tests.evidence_support import audit_frame, upload

FEATURES = samples.CREDIT_FEATURES
TARGET = samples.CREDIT_TARGET


@pytest.fixture(scope="module")
def credit():
    frame = samples.credit_data(3000, seed=4)
    estimator = samples.credit_pipeline(LogisticRegression(max_iter=500))
    return frame, estimator.fit(frame[FEATURES], frame[TARGET])


def stored(model):
    """The wrapper after a skops round trip through the registry's own checks."""
    with tempfile.NamedTemporaryFile(suffix=".skops") as f:
        sio.dump(model, f.name)
        named, _ = check_types(f.name)
        report = inspect_artifact(
            f.name, task="classification", declared_inputs=None, dataset_schema=None, target=""
        )
        assert report.estimator_class.startswith("governance.estimators.")
        return sio.load(f.name, trusted=sio.get_untrusted_types(file=f.name)), named


def test_threshold_optimizer_candidate_predicts_exactly_like_fairlearn(credit):
    frame, fitted = credit
    candidate = mitigated_estimator(
        fitted,
        frame,
        features=FEATURES,
        target=TARGET,
        sensitive=["sex"],
        method="threshold_optimizer",
        constraint="demographic_parity",
        random_state=5,
    )
    reference = ThresholdOptimizer(
        estimator=fitted,
        constraints="demographic_parity",
        objective=THRESHOLD_OBJECTIVE,
        prefit=True,
        predict_method="auto",
    ).fit(frame[FEATURES], frame[TARGET], sensitive_features=frame[["sex"]])
    expected = reference.predict(frame[FEATURES], sensitive_features=frame[["sex"]], random_state=5)
    loaded, named = stored(candidate)
    assert set(TRUSTED_TYPES[:1]) <= set(named)
    np.testing.assert_array_equal(loaded.predict(frame), expected)
    # Its inputs are the model's features plus the sensitive column it needs.
    assert list(loaded.feature_names_in_) == [*FEATURES, "sex"]


def test_exponentiated_gradient_candidate_predicts_exactly_like_fairlearn():
    frame = audit_frame(1500)
    features = ["age", "income", "score"]
    base = LogisticRegression(max_iter=300)
    candidate = mitigated_estimator(
        base.fit(frame[features], frame["label"]),
        frame,
        features=features,
        target="label",
        sensitive=["sex"],
        method="exponentiated_gradient",
        constraint="demographic_parity",
        random_state=2,
    )
    reference = ExponentiatedGradient(
        LogisticRegression(max_iter=300), constraints=DemographicParity()
    )
    reference.fit(frame[features], frame["label"], sensitive_features=frame[["sex"]])
    loaded, _ = stored(candidate)
    np.testing.assert_allclose(
        loaded.predict_proba(frame)[:, 1], reference._pmf_predict(frame[features])[:, 1]
    )
    np.testing.assert_array_equal(
        loaded.predict(frame), reference.predict(frame[features], random_state=2)
    )


def test_exponentiated_gradient_needs_an_estimator_taking_sample_weight(credit):
    frame, fitted = credit  # a Pipeline: its fit takes no sample_weight
    with pytest.raises(FairnessInputError, match="sample_weight"):
        mitigated_estimator(
            fitted,
            frame,
            features=FEATURES,
            target=TARGET,
            sensitive=["sex"],
            method="exponentiated_gradient",
            constraint="demographic_parity",
            random_state=0,
        )


# --------------------------------------------------------------------------- the run


def training_upload(model, actor, frame, name="train-data"):
    return registry_services.dataset_upload(
        actor=actor,
        model=model,
        name=name,
        role="training",
        upload=io.BytesIO(csv_bytes(frame)),
        filename=f"{name}.csv",
    )


@pytest.fixture
def failed_audit(db, model, personas):
    """v1 trained on ``train-data``, audited on the held-out ``audit-data``: failed."""
    train = training_upload(model, personas.bot, audit_frame(seed=3))
    ready_version(model, personas.bot, training_dataset=train, target_column="label")
    dataset = upload(model, personas.bot, audit_frame(seed=8))
    response = client_for(personas.bot).post(
        "/api/v1/models/credit/versions/1/fairness-audits/",
        {"dataset": dataset.pk, "target_column": "label", "sensitive_features": ["sex"]},
        format="json",
    )
    heavy_fairness_audit.run(response.json()["id"])
    audit = FairnessAudit.objects.get(pk=response.json()["id"])
    assert audit.passed is False
    return audit


def mitigations_url(audit) -> str:
    return f"/api/v1/models/credit/versions/1/fairness-audits/{audit.pk}/mitigations/"


def mitigate(audit, personas, **body):
    """POST the mitigation as the owner and run the retraining run in-process."""
    response = client_for(personas.owner).post(mitigations_url(audit), body, format="json")
    assert response.status_code == 202, response.json()
    heavy_retrain.run(response.json()["id"])
    run = RetrainingRun.objects.select_related("version").get(pk=response.json()["id"])
    assert run.status == "succeeded", run.error
    return run


def loaded(version):
    with cached_blob_path(version.artifact_key) as path:
        return load_estimator(path)[0]


def table(dataset):
    with cached_blob_path(dataset.storage_key) as path:
        return read_table(path)


def test_a_mitigation_is_a_retraining_run_whose_candidate_is_validated_audited_and_evaluated(
    failed_audit, personas, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    response = client_for(personas.owner).post(
        mitigations_url(failed_audit), {"method": "threshold_optimizer"}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    # The answer is the run, as POST .../retrain/ gives it: one door for every candidate.
    assert (body["strategy"], body["trigger"], body["fairness_audit"]) == (
        "fairness_mitigation",
        "request",
        failed_audit.pk,
    )
    assert body["params"] == {
        "method": "threshold_optimizer",
        "constraint": "demographic_parity",
        "sensitive_columns": ["sex"],
    }
    assert body["parent"] == 1 and body["requested_by"] == "owner"
    assert body["training_dataset"]["name"] == "train-data"
    assert body["evaluation_dataset"]["id"] == failed_audit.dataset_id
    assert body["url"].endswith(f"/retraining-runs/{body['id']}/")
    heavy_retrain.run(body["id"])
    run = RetrainingRun.objects.get(pk=body["id"])
    assert run.status == "succeeded", run.error
    candidate = run.version
    assert candidate.status == "pending" and candidate.parent.number == 1
    assert candidate.source_run_id == f"retraining-run-{run.pk}"
    assert sorted(candidate.tags) == ["fairness_mitigation", "retrained"]
    # Authored by the run, requested by the owner: requesting is not authoring.
    assert candidate.created_by is None and candidate.requested_by == personas.owner
    registered = AuditEvent.objects.get(
        action="registry.version.registered", object_id=candidate.pk
    )
    assert registered.actor == f"system:lifecycle.retraining_run#{run.pk}"
    body = client_for(personas.viewer).get("/api/v1/models/credit/versions/2/").json()
    assert (body["created_by"], body["requested_by"]) == (None, "owner")

    # The registry validates it; its "ready" event starts the run's follow-up: the
    # evaluation and the fairness audit, both on the audit's held-out rows.
    with django_capture_on_commit_callbacks(execute=True):
        validate(candidate)
    candidate.refresh_from_db()
    assert candidate.status == "ready", candidate.status_reason
    assert candidate.estimator == "governance.estimators.GroupThresholdClassifier"
    run.refresh_from_db()
    follow_up = run.follow_up_audit
    assert follow_up is not None and follow_up.version == candidate
    assert follow_up.sensitive_columns == ["sex"] and follow_up.dataset == failed_audit.dataset
    evaluation = Evaluation.objects.get(version=candidate)
    assert run.evaluation == evaluation
    assert (evaluation.dataset, evaluation.target_column) == (failed_audit.dataset, "label")
    heavy_evaluate.run(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", evaluation.error
    heavy_fairness_audit.run(follow_up.pk)
    follow_up.refresh_from_db()
    ratio = {r["rule"]: r for r in follow_up.report["rules"]}["demographic_parity_ratio_min"]
    before = {r["rule"]: r for r in failed_audit.report["rules"]}["demographic_parity_ratio_min"]
    assert ratio["value"] > before["value"]
    assert ratio["status"] == "passed"
    listed = client_for(personas.viewer).get("/api/v1/models/credit/versions/1/mitigations/")
    assert listed.status_code == 200
    (row,) = listed.json()["results"]
    assert (row["id"], row["version"], row["follow_up_audit"]) == (
        run.pk,
        candidate.number,
        follow_up.pk,
    )
    assert row["evaluation"] == evaluation.pk
    # The same run is in the model's retraining history.
    history = client_for(personas.viewer).get("/api/v1/models/credit/retraining-runs/").json()
    assert [r["id"] for r in history["results"]] == [run.pk]


def test_the_candidate_is_fitted_on_the_training_data_and_scored_on_the_held_out_rows(
    failed_audit, personas, monkeypatch
):
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    run = mitigate(failed_audit, personas, method="threshold_optimizer")
    candidate = validate(run.version)
    parent = candidate.parent
    train, holdout = table(parent.training_dataset), table(failed_audit.dataset)
    assert candidate.training_dataset == parent.training_dataset
    assert run.holdout_dataset is None  # judged on the audited rows, no hold-out drawn

    stored = loaded(candidate)
    common = dict(
        features=parent.feature_names,
        target="label",
        sensitive=["sex"],
        method="threshold_optimizer",
        constraint="demographic_parity",
        random_state=0,
        classes=parent.classes,
    )
    on_training = mitigated_estimator(loaded(parent), train, **common)
    on_holdout = mitigated_estimator(loaded(parent), holdout, **common)
    np.testing.assert_array_equal(stored.predict(holdout), on_training.predict(holdout))
    assert not np.array_equal(stored.predict(holdout), on_holdout.predict(holdout))

    # Its metrics are scikit-learn's on the held-out rows, which it was not fitted on.
    predicted = stored.predict(holdout)
    assert candidate.metrics["accuracy"] == pytest.approx(
        accuracy_score(holdout["label"], predicted), abs=1e-6
    )
    assert candidate.metrics["f1"] == pytest.approx(f1_score(holdout["label"], predicted), abs=1e-6)
    assert candidate.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(holdout["label"], stored.predict_proba(holdout)[:, 1]), abs=1e-6
    )
    assert run.comparison["compared_on"] == f"evaluation dataset {failed_audit.dataset}"


def test_a_mitigation_needs_training_data_apart_from_the_audited_rows(
    db, model, personas, monkeypatch
):
    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    train = training_upload(model, personas.bot, audit_frame(seed=3))
    ready_version(model, personas.bot)  # v1: no training dataset recorded
    ready_version(model, personas.bot, training_dataset=train, target_column="label")  # v2
    for number, dataset in ((1, upload(model, personas.bot, audit_frame(seed=8))), (2, train)):
        response = client_for(personas.bot).post(
            f"/api/v1/models/credit/versions/{number}/fairness-audits/",
            {"dataset": dataset.pk, "target_column": "label", "sensitive_features": ["sex"]},
            format="json",
        )
        heavy_fairness_audit.run(response.json()["id"])
    no_training, on_training = FairnessAudit.objects.order_by("version__number")
    assert no_training.passed is False and on_training.passed is False

    refused = client_for(personas.owner).post(
        f"/api/v1/models/credit/versions/1/fairness-audits/{no_training.pk}/mitigations/",
        {},
        format="json",
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_training_data"
    refused = client_for(personas.owner).post(
        f"/api/v1/models/credit/versions/2/fairness-audits/{on_training.pk}/mitigations/",
        {},
        format="json",
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "audit_on_training_data"
    assert "held-out" in refused.json()["error"]["message"]
    assert not RetrainingRun.objects.exists()


def test_only_the_owner_mitigates_and_only_a_failed_audit(failed_audit, personas, model):
    bot = client_for(personas.bot)  # may register, may not manage
    refused = bot.post(mitigations_url(failed_audit), {}, format="json")
    assert refused.status_code == 403 and "owner" in refused.json()["error"]["message"]
    assert client_for(personas.outsider).post(mitigations_url(failed_audit), {}).status_code == 404
    wrong_version = "/api/v1/models/credit/versions/2/fairness-audits/"
    assert (
        client_for(personas.owner)
        .post(f"{wrong_version}{failed_audit.pk}/mitigations/", {}, format="json")
        .status_code
        == 404
    )
    FairnessAudit.objects.filter(pk=failed_audit.pk).update(passed=True)
    response = client_for(personas.owner).post(mitigations_url(failed_audit), {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "audit_not_failed"
    assert not RetrainingRun.objects.exists()
    assert ModelVersion.objects.filter(registered_model=model).count() == 1


def test_the_mitigation_door_keeps_the_run_guards_cooldown_and_one_active_run(
    failed_audit, personas, model, monkeypatch
):
    """A mitigation is a run like any other: one active run per model, and the policy's
    cooldown, which only a person's ``force`` overrides (and the run says so)."""
    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    retraining.retraining_policy_set(actor=personas.owner, model=model, cooldown_minutes=60)
    owner = client_for(personas.owner)
    first = owner.post(mitigations_url(failed_audit), {}, format="json")
    assert first.status_code == 202
    busy = owner.post(mitigations_url(failed_audit), {"force": True}, format="json")
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "run_active"
    heavy_retrain.run(first.json()["id"])
    cooling = owner.post(mitigations_url(failed_audit), {}, format="json")
    assert cooling.status_code == 409 and cooling.json()["error"]["code"] == "cooldown"
    assert RetrainingRun.objects.count() == 1
    forced = owner.post(
        mitigations_url(failed_audit),
        {"force": True, "method": "exponentiated_gradient", "reason": "second try"},
        format="json",
    )
    assert forced.status_code == 202, forced.json()
    assert forced.json()["forced"] is True and forced.json()["reason"] == "second try"
    assert forced.json()["params"]["method"] == "exponentiated_gradient"


def test_exponentiated_gradient_registers_a_candidate_and_unknown_methods_are_400(
    failed_audit, personas, monkeypatch
):
    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    # The test model is a bare LogisticRegression, whose fit takes sample weights.
    run = mitigate(failed_audit, personas, method="exponentiated_gradient", random_state=7)
    assert run.version.parent.number == 1 and run.seed == 7
    for bad in ({"method": "magic"}, {"constraint": "luck"}, {"random_state": -1}):
        response = client_for(personas.owner).post(
            mitigations_url(failed_audit), bad, format="json"
        )
        assert response.status_code == 400
        assert set(bad) <= set(response.json()["error"]["details"])
    assert RetrainingRun.objects.count() == 1


def test_a_lost_ready_event_is_caught_up_by_the_retraining_sweep(
    failed_audit, personas, monkeypatch
):
    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    run = mitigate(failed_audit, personas)
    assert retraining.retraining_follow_up_sweep() == 0  # the candidate is still pending
    validate(run.version)  # its event is never delivered (no on-commit here)
    run.refresh_from_db()
    assert run.follow_up_audit is None
    assert retraining.retraining_follow_up_sweep() == 1
    assert retraining.retraining_follow_up_sweep() == 0  # once only
    run.refresh_from_db()
    assert run.follow_up_audit.version == run.version
    assert run.follow_up_audit.dataset == failed_audit.dataset


# --------------------------------------------------------------------------- the positive class


@pytest.mark.parametrize("classes", [[2, 10], ["no", "yes"], [False, True]])
def test_a_candidate_is_fitted_on_the_positive_class_and_answers_in_the_versions_classes(
    classes,
):
    """fairlearn takes 0/1 labels only: it sees "is classes[1]", and the candidate
    predicts the audited version's own classes."""
    frame = audit_frame(1500)
    frame["label"] = np.asarray(classes)[frame["label"].to_numpy()]
    features = ["age", "income", "score"]
    fitted = LogisticRegression(max_iter=300).fit(frame[features], frame["label"])
    candidate = mitigated_estimator(
        fitted,
        frame,
        features=features,
        target="label",
        sensitive=["sex"],
        method="threshold_optimizer",
        constraint="demographic_parity",
        random_state=5,
        classes=classes,
    )
    positive = (frame["label"] == classes[1]).astype(int)
    reference = ThresholdOptimizer(
        estimator=fitted,
        constraints="demographic_parity",
        objective=THRESHOLD_OBJECTIVE,
        prefit=True,
        predict_method="auto",
    ).fit(frame[features], positive, sensitive_features=frame[["sex"]])
    expected = reference.predict(frame[features], sensitive_features=frame[["sex"]], random_state=5)
    loaded, _ = stored(candidate)
    assert list(map(repr, loaded.classes_.tolist())) == list(map(repr, classes))
    np.testing.assert_array_equal(loaded.predict(frame), np.asarray(classes)[expected])


def test_a_mitigated_candidate_of_a_text_labelled_model_is_audited_on_the_same_class(
    db, model, personas, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    frame = audit_frame()
    frame["label"] = np.where(frame["label"] == 1, "yes", "no")
    features = ["age", "income", "score"]
    fitted = LogisticRegression(max_iter=300).fit(frame[features], frame["label"])
    train = training_upload(model, personas.bot, frame)
    ready_version(
        model,
        personas.bot,
        artifact=sio.dumps(fitted),
        training_dataset=train,
        target_column="label",
    )
    holdout = audit_frame(seed=8)
    holdout["label"] = np.where(holdout["label"] == 1, "yes", "no")
    dataset = upload(model, personas.bot, holdout)
    response = client_for(personas.bot).post(
        "/api/v1/models/credit/versions/1/fairness-audits/",
        {"dataset": dataset.pk, "target_column": "label", "sensitive_features": ["sex"]},
        format="json",
    )
    heavy_fairness_audit.run(response.json()["id"])
    audit = FairnessAudit.objects.get(pk=response.json()["id"])
    assert audit.passed is False and audit.report["pos_label"] == "yes"

    run = mitigate(audit, personas, method="threshold_optimizer")
    with django_capture_on_commit_callbacks(execute=True):
        validate(run.version)
    candidate = ModelVersion.objects.get(pk=run.version_id)
    assert candidate.status == "ready", candidate.status_reason
    assert candidate.classes == ["no", "yes"]
    run.refresh_from_db()
    heavy_fairness_audit.run(run.follow_up_audit.pk)
    follow_up = FairnessAudit.objects.get(pk=run.follow_up_audit.pk)
    assert follow_up.status == "succeeded", follow_up.error
    assert follow_up.report["pos_label"] == "yes"
    ratio = {r["rule"]: r for r in follow_up.report["rules"]}["demographic_parity_ratio_min"]
    assert ratio["status"] == "passed"


# --------------------------------------------------------------------------- the page


def panel_of(html: str, panel: str) -> str:
    return html.split(f'id="panel-{panel}"')[1].split("</section>")[0]


def test_start_mitigation_on_the_version_page_queues_a_retraining_run(
    failed_audit, personas, monkeypatch
):
    from django.test import Client

    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    pages = {}
    for persona in ("owner", "bot", "viewer"):
        client = Client()
        client.force_login(getattr(personas, persona))
        pages[persona] = client
    action = f"/models/credit/versions/1/fairness-audits/{failed_audit.pk}/mitigations/"
    owner_panel = panel_of(
        pages["owner"].get("/models/credit/versions/1/").content.decode(), "mitigation"
    )
    assert f"Fairness audit #{failed_audit.pk}" in owner_panel and "Start mitigation" in owner_panel
    assert f'action="{action}"' in owner_panel
    fairness = panel_of(
        pages["owner"].get("/models/credit/versions/1/").content.decode(), "fairness"
    )
    assert "Start mitigation" not in fairness  # one place only, lifecycle's panel
    for persona in ("bot", "viewer"):  # they see why, not the button
        panel = panel_of(
            pages[persona].get("/models/credit/versions/1/").content.decode(), "mitigation"
        )
        assert "failed" in panel and "Start mitigation" not in panel
    refused = pages["bot"].post(
        action, {"method": "threshold_optimizer", "constraint": "demographic_parity"}, follow=True
    )
    assert "Only the model" in refused.content.decode()
    assert not RetrainingRun.objects.exists()

    response = pages["owner"].post(
        action, {"method": "threshold_optimizer", "constraint": "equalized_odds"}
    )
    assert response.status_code == 302 and response["Location"].endswith(
        "/models/credit/versions/1/#panel-mitigation"
    )
    run = RetrainingRun.objects.get()
    assert (run.strategy, run.fairness_audit, run.requested_by) == (
        "fairness_mitigation",
        failed_audit,
        personas.owner,
    )
    assert run.params["constraint"] == "equalized_odds"
    page = pages["owner"].get("/models/credit/versions/1/").content.decode()
    panel = panel_of(page, "mitigation")
    assert f"Retraining run #{run.pk}" in panel and "Queued." in panel
    assert f"/models/credit/retraining/runs/{run.pk}/" in panel
    assert "/models/credit/versions/1/mitigation/" in page  # the panel polls while it runs

    # A second click while it is queued: the run guard's refusal, in words, nothing queued.
    again = pages["owner"].post(
        action, {"method": "threshold_optimizer", "constraint": "demographic_parity"}, follow=True
    )
    assert "wait for it to finish" in again.content.decode()
    assert RetrainingRun.objects.count() == 1
    bad = pages["owner"].post(
        action, {"method": "magic", "constraint": "demographic_parity"}, follow=True
    )
    assert "Choose a mitigation method" in bad.content.decode()
    outsider = Client()
    outsider.force_login(personas.outsider)
    assert outsider.post(action, {"method": "threshold_optimizer"}).status_code == 404
    assert outsider.get("/models/credit/versions/1/mitigation/").status_code == 404

    heavy_retrain.run(run.pk)
    validate(RetrainingRun.objects.get(pk=run.pk).version)
    fragment = pages["viewer"].get("/models/credit/versions/1/mitigation/").content.decode()
    assert '→ <a href="/models/credit/versions/2/">v2</a>' in fragment
