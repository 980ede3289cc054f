"""Fairness audit jobs: requested through the API, run by the worker's service,
judged against thresholds frozen from the policy, filed as evidence."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
)

from common.models import AuditEvent
from governance.models import FairnessAudit
from governance.tasks import heavy_fairness_audit
from tests.conftest import FEATURES, classifier_bytes, client_for, ready_version
from tests.evidence_support import audit_frame, upload

pytestmark = pytest.mark.django_db


def url(number: int = 1, suffix: str = "") -> str:
    return f"/api/v1/models/credit/versions/{number}/fairness-audits/{suffix}"


def body(dataset, **extra):
    return {
        "dataset": dataset.pk,
        "target_column": "label",
        "sensitive_features": ["sex", "age_band"],
        **extra,
    }


def run(job_id: int) -> FairnessAudit:
    heavy_fairness_audit.run(job_id)
    return FairnessAudit.objects.get(pk=job_id)


@pytest.fixture
def frame():
    return audit_frame()


@pytest.fixture
def dataset(model, personas, frame):
    return upload(model, personas.bot, frame)


def test_an_audit_equals_fairlearn_on_the_versions_own_predictions(
    model, personas, dataset, frame, filed
):
    ready_version(model, personas.bot)
    response = client_for(personas.bot).post(url(), body(dataset), format="json")
    assert response.status_code == 202, response.json()
    job = run(response.json()["id"])
    assert job.status == "succeeded", job.error

    y_true = frame["label"]
    y_pred = sio.loads(classifier_bytes(), trusted=sio.get_untrusted_types(data=classifier_bytes()))
    y_pred = y_pred.predict(frame[FEATURES])
    scopes = {s["name"]: s for s in job.report["scopes"]}
    by_sex = MetricFrame(
        metrics=selection_rate, y_true=y_true, y_pred=y_pred, sensitive_features=frame["sex"]
    ).by_group
    for group in scopes["sex"]["groups"]:
        assert group["metrics"]["selection_rate"] == pytest.approx(
            by_sex[group["group"]["sex"]], abs=1e-9
        )
    disparities = scopes["sex"]["disparities"]
    sex = frame["sex"]
    assert disparities["demographic_parity_difference"]["value"] == pytest.approx(
        demographic_parity_difference(y_true, y_pred, sensitive_features=sex), abs=1e-9
    )
    assert disparities["demographic_parity_ratio"]["value"] == pytest.approx(
        demographic_parity_ratio(y_true, y_pred, sensitive_features=sex), abs=1e-9
    )
    assert disparities["equalized_odds_difference"]["value"] == pytest.approx(
        equalized_odds_difference(y_true, y_pred, sensitive_features=sex), abs=1e-9
    )
    # The known bias fails the four-fifths rule on sex.
    failed = {(r["scope"], r["rule"]) for r in job.report["rules"] if r["status"] == "failed"}
    assert ("sex", "demographic_parity_ratio_min") in failed
    assert job.passed is False

    # Intersections are audited, and the 5-row "75+" band is reported but excluded.
    assert set(scopes) == {"sex", "age_band", "sex & age_band"}
    tiny = next(g for g in scopes["age_band"]["groups"] if g["group"]["age_band"] == "75+")
    assert tiny["excluded"] and tiny["count"] == 5
    assert "min_group_size 30" in tiny["excluded_reason"]

    # Filed as evidence with the job's digest, in the same transaction.
    [item] = [i for i in filed if i.kind == "fairness_audit"]
    assert (item.sha256, item.passed, item.version_id) == (job.sha256, False, job.version_id)
    assert "failed" in item.summary and item.source == f"governance.fairnessaudit:{job.pk}"
    assert AuditEvent.objects.filter(action="governance.fairness_audit.completed").count() == 1


def test_thresholds_are_frozen_from_the_policy_when_the_audit_is_queued(
    model, personas, dataset, policy
):
    ready_version(model, personas.bot)
    policy["fairness_audit"] = {"demographic_parity_ratio_min": 0.1, "min_group_size": 3}
    job_id = client_for(personas.bot).post(url(), body(dataset), format="json").json()["id"]
    policy["fairness_audit"] = {"demographic_parity_ratio_min": 0.99, "min_group_size": 500}
    job = run(job_id)
    assert job.thresholds["demographic_parity_ratio_min"] == 0.1
    assert job.min_group_size == 3
    assert job.report["thresholds"]["demographic_parity_ratio_min"] == 0.1
    tiny = next(
        g
        for s in job.report["scopes"]
        if s["name"] == "age_band"
        for g in s["groups"]
        if g["group"]["age_band"] == "75+"
    )
    assert not tiny["excluded"]  # 5 rows >= the frozen minimum of 3


def test_a_sensitive_column_missing_from_the_dataset_is_a_clear_400(model, personas, dataset):
    ready_version(model, personas.bot)
    response = client_for(personas.bot).post(
        url(), body(dataset, sensitive_features=["sex", "religion"]), format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_dataset"
    assert error["details"]["problems"] == [
        {"column": "religion", "message": "the column 'religion' is missing"}
    ]
    assert not FairnessAudit.objects.exists()


def test_a_dataset_that_does_not_match_the_signature_is_refused(model, personas, frame):
    ready_version(model, personas.bot)
    wrong = upload(model, personas.bot, frame.drop(columns=["income"]), name="no-income")
    response = client_for(personas.bot).post(url(), body(wrong), format="json")
    assert response.status_code == 400
    assert "'income' is missing" in response.json()["error"]["message"]
    assert not FairnessAudit.objects.exists()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"sensitive_features": []}, "sensitive_features"),
        ({"sensitive_features": "sex"}, "sensitive_features"),
        ({"bootstrap": 10_000}, "bootstrap"),
        ({"dataset": "x"}, "dataset"),
    ],
)
def test_malformed_requests_are_400_and_queue_nothing(model, personas, dataset, change, field):
    ready_version(model, personas.bot)
    response = client_for(personas.bot).post(url(), {**body(dataset), **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not FairnessAudit.objects.exists()


def test_the_target_cannot_also_be_a_sensitive_feature(model, personas, dataset):
    ready_version(model, personas.bot)
    response = client_for(personas.bot).post(
        url(), body(dataset, sensitive_features=["label"]), format="json"
    )
    assert response.status_code == 400
    assert not FairnessAudit.objects.exists()


def test_permissions_on_fairness_audits(model, personas, dataset):
    ready_version(model, personas.bot)
    assert client_for(None).get(url()).status_code == 401
    assert client_for(personas.outsider).get(url()).status_code == 404
    assert (
        client_for(personas.outsider).post(url(), body(dataset), format="json").status_code == 404
    )
    assert client_for(personas.viewer).post(url(), body(dataset), format="json").status_code == 403
    assert client_for(personas.viewer).get(url()).status_code == 200
    job_id = client_for(personas.bot).post(url(), body(dataset), format="json").json()["id"]
    assert client_for(personas.viewer).get(url(suffix=f"{job_id}/")).status_code == 200
    assert client_for(personas.outsider).get(url(suffix=f"{job_id}/")).status_code == 404
    assert client_for(personas.viewer).get(url(suffix="999999/")).status_code == 404


def test_bootstrap_intervals_are_seeded(model, personas, dataset):
    ready_version(model, personas.bot)
    client = client_for(personas.bot)
    first = run(
        client.post(url(), body(dataset, bootstrap=50, random_state=7), format="json").json()["id"]
    )
    again = run(
        client.post(url(), body(dataset, bootstrap=50, random_state=7), format="json").json()["id"]
    )
    ci = first.report["scopes"][0]["disparities"]["demographic_parity_difference"]["ci"]
    assert ci == again.report["scopes"][0]["disparities"]["demographic_parity_difference"]["ci"]
    assert (
        ci["low"]
        <= first.report["scopes"][0]["disparities"]["demographic_parity_difference"]["value"]
        <= ci["high"]
    )
    assert first.sha256 == again.sha256


def test_a_regression_model_is_audited_by_error_per_group(personas, frame):
    from tests.conftest import create_model, grant, regressor_bytes

    model = create_model(personas.owner, name="credit", task="regression")
    grant(model, personas.bot, "contributor")
    ready_version(model, personas.bot, artifact=regressor_bytes())
    frame = frame.assign(label=frame["score"])  # a numeric target for the regressor
    dataset = upload(model, personas.bot, frame)
    job = run(client_for(personas.bot).post(url(), body(dataset), format="json").json()["id"])
    assert job.status == "succeeded", job.error
    model_ = sio.loads(regressor_bytes(), trusted=sio.get_untrusted_types(data=regressor_bytes()))
    errors = model_.predict(frame[FEATURES]) - frame["label"]
    women = (frame["sex"] == "F").to_numpy()
    rmse_f = float(np.sqrt(np.mean(errors[women] ** 2)))
    group = next(g for g in job.report["scopes"][0]["groups"] if g["group"]["sex"] == "F")
    assert group["metrics"]["rmse"] == pytest.approx(rmse_f, abs=1e-9)


def test_auditors_read_audits_in_the_admin_and_change_nothing(model, personas, dataset, client):
    ready_version(model, personas.bot)
    job_id = client_for(personas.bot).post(url(), body(dataset), format="json").json()["id"]
    client.force_login(personas.auditor)
    assert client.get("/admin/governance/fairnessaudit/").status_code == 200
    assert client.get(f"/admin/governance/fairnessaudit/{job_id}/change/").status_code == 200
    assert client.get("/admin/governance/fairnessaudit/add/").status_code == 403
    assert client.get("/admin/governance/modelcard/").status_code == 200
    # Mitigations are retraining runs now: lifecycle's admin lists them.
    assert client.get("/admin/governance/mitigationrun/").status_code == 404
    assert client.get("/admin/lifecycle/retrainingrun/").status_code == 200


def test_the_version_page_form_queues_an_audit_or_shows_why_not(model, personas, dataset, client):
    ready_version(model, personas.bot)
    client.force_login(personas.bot)
    target = "/models/credit/versions/1/fairness-audits/"
    form = {"dataset": dataset.pk, "target_column": "label", "bootstrap": 0}
    refused = client.post(
        target, {**form, "sensitive_features": "sex, religion"}, HTTP_HX_REQUEST="true"
    )
    assert refused.status_code == 200  # the panel fragment, with the reason
    html = refused.content.decode()
    assert html.startswith('<section class="card" id="panel-fairness"')
    assert "the column &#x27;religion&#x27; is missing" in html
    assert not FairnessAudit.objects.exists()
    queued = client.post(target, {**form, "sensitive_features": "sex"}, HTTP_HX_REQUEST="true")
    assert "Fairness audit queued" in queued.content.decode()
    assert 'hx-trigger="every 3s"' in queued.content.decode()  # polls until the job is done
    assert FairnessAudit.objects.get().sensitive_columns == ["sex"]
    client.force_login(personas.viewer)
    assert "fairness-audit-form" not in client.get("/models/credit/versions/1/").content.decode()
    refused = client.post(target, {**form, "sensitive_features": "sex"})
    assert refused.status_code == 403  # as the API answers, in its error shape
    assert refused.json()["error"]["code"] == "permission_denied"
    client.force_login(personas.outsider)
    assert client.post(target, {**form, "sensitive_features": "sex"}).status_code == 404
    assert FairnessAudit.objects.count() == 1  # neither request changed anything
