"""Lifecycle actions from the version page on the API's services: request an evaluation
on a chosen dataset (``evaluation_start``), start a fairness mitigation of a failed audit
(``retraining_run_request`` with the audit, as ``POST retrain {"fairness_audit": id}``)."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from sklearn.linear_model import LogisticRegression

from governance import fairness_audits
from governance.tasks import heavy_fairness_audit
from lifecycle.models import Evaluation
from registry import services as registry_services
from tests.conftest import client_for, csv_bytes, grant, ready_version, training_frame
from tests.evidence_support import audit_frame, upload
from tests.lifecycle.retraining_support import fitted_bytes

pytestmark = pytest.mark.django_db
VERSION_PAGE = "/models/credit/versions/1/"
REQUEST = "/models/credit/versions/1/evaluations/request/"


def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def holdout(model, actor, frame=None, name="holdout"):
    return registry_services.dataset_upload(
        actor=actor,
        model=model,
        name=name,
        role="evaluation",
        upload=io.BytesIO(csv_bytes(training_frame(400, seed=9) if frame is None else frame)),
        filename=f"{name}.csv",
    )


class TestRequestAnEvaluation:
    def test_a_contributor_requests_one_on_the_dataset_they_choose(self, model, personas):
        ready_version(model, personas.bot)
        holdout(model, personas.bot, name="other")
        chosen = holdout(model, personas.bot)
        client = web(personas.bot)
        page = client.get(VERSION_PAGE).content.decode()
        assert 'id="evaluation-request"' in page and "holdout" in page
        response = client.post(REQUEST, {"dataset": chosen.pk, "target_column": "label"})
        assert response.status_code == 302
        assert response["Location"].endswith("#panel-evaluation")
        job = Evaluation.objects.get()
        assert job.dataset == chosen and job.requested_by == personas.bot
        assert job.status == "queued" and job.target_column == "label"
        page = client.get(response["Location"]).content.decode()
        assert f"Evaluation #{job.pk} on {chosen} queued" in page
        assert 'id="evaluations-pending"' in page
        poll = "/models/credit/versions/1/evaluation/"
        assert f'hx-get="{poll}" hx-trigger="every 3s"' in page
        fragment = client.get(poll).content.decode()
        assert fragment.startswith('<section class="card" id="panel-evaluation"')
        assert web(personas.outsider).get(poll).status_code == 404

    def test_the_services_refusal_is_the_apis_message(self, model, personas):
        ready_version(model, personas.bot)
        narrow = holdout(model, personas.bot, training_frame().drop(columns=["income"]), "narrow")
        api = client_for(personas.bot).post(
            "/api/v1/models/credit/versions/1/evaluations/",
            {"dataset": narrow.pk, "target_column": "label"},
            format="json",
        )
        assert api.status_code == 400
        client = web(personas.bot)
        response = client.post(REQUEST, {"dataset": narrow.pk, "target_column": "label"})
        page = client.get(response["Location"]).content.decode()
        assert api.json()["error"]["message"].replace("'", "&#x27;") in page
        assert not Evaluation.objects.exists()

    def test_a_viewer_sees_no_form_gets_403_an_outsider_404(self, model, personas):
        ready_version(model, personas.bot)
        dataset = holdout(model, personas.bot)
        assert (
            'id="evaluation-request"' not in web(personas.viewer).get(VERSION_PAGE).content.decode()
        )
        refused = web(personas.viewer).post(
            REQUEST, {"dataset": dataset.pk, "target_column": "label"}
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "permission_denied"
        outsider = web(personas.outsider).post(
            REQUEST, {"dataset": dataset.pk, "target_column": "label"}
        )
        assert outsider.status_code == 404
        assert not Evaluation.objects.exists()

    def test_a_validator_with_the_approve_right_may_request_one(self, model, personas):
        ready_version(model, personas.bot)
        dataset = holdout(model, personas.bot)
        grant(model, personas.validator, "approver")
        response = web(personas.validator).post(
            REQUEST, {"dataset": dataset.pk, "target_column": "label"}
        )
        assert (
            response.status_code == 302
            and Evaluation.objects.get().requested_by == personas.validator
        )


def make_failed_audit(model, personas):
    """credit v1 trained on data biased by sex, and its completed audit that failed."""
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
    return audit


@pytest.fixture
def failed_audit(model, personas):
    return make_failed_audit(model, personas)


class TestMitigationCard:
    def test_no_mitigation_card_without_a_failed_audit(self, model, personas):
        ready_version(model, personas.bot)
        assert 'id="panel-mitigation"' not in web(personas.owner).get(VERSION_PAGE).content.decode()
