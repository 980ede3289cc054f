"""A version that reads sensitive attributes at prediction time: said in plain words on
its review, its version page and its model card, and acknowledged by the role the
policy names before it can be approved."""

from __future__ import annotations

import importlib

import pytest
import skops.io as sio
from django.apps import apps as global_apps
from django.test import Client
from sklearn.linear_model import LogisticRegression

from common import jobs
from common.errors import DomainError
from governance import fairness_audits, policies, reviews, selectors
from governance.models import ApprovalPolicy, Review, SignOff
from tests.conftest import ready_version
from tests.evidence_support import audit_frame, upload
from tests.governance.review_support import HIGH_EVIDENCE, file_evidence, high_risk_version, sign

pytestmark = pytest.mark.django_db

FEATURES = ["age", "income", "score", "sex"]
NOTICE = "Uses sensitive attributes at prediction time"


def web(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reads_sex(personas, monkeypatch):
    """credit v2 takes ``sex`` as an input; the model's fairness audits name ``sex``."""
    monkeypatch.setattr(jobs, "_send", lambda job, countdown=None: None)
    v1 = high_risk_version(personas)
    frame = audit_frame()
    frame["sex"] = (frame["sex"] == "F").astype("int64")
    fitted = LogisticRegression(max_iter=300).fit(frame[FEATURES], frame["label"])
    version = ready_version(
        v1.registered_model,
        personas.bot,
        artifact=sio.dumps(fitted),
        signature_inputs=[{"name": n, "dtype": str(frame[n].dtype)} for n in FEATURES],
    )
    dataset = upload(v1.registered_model, personas.bot, frame)
    fairness_audits.fairness_audit_start(
        actor=personas.bot,
        version=v1,
        dataset=dataset,
        target_column="label",
        sensitive_columns=["sex", "age_band"],
    )
    for kind in HIGH_EVIDENCE:
        file_evidence(version, kind)
    return version


def acknowledgement(review):
    return next(
        i
        for i in selectors.review_checklist(review=review)
        if i["requirement"] == "acknowledgement:sensitive_inputs"
    )


def test_the_sensitive_inputs_of_a_version_are_those_its_models_audits_name(personas, reads_sex):
    assert selectors.sensitive_inputs(version=reads_sex) == ["sex"]
    v1 = reads_sex.registered_model.versions.get(number=1)
    assert selectors.sensitive_inputs(version=v1) == []


def test_the_review_page_the_version_page_and_the_model_card_say_it_in_plain_words(
    personas, reads_sex
):
    reviews.review_submit(actor=personas.owner, version=reads_sex)
    client = web(personas.compliance)
    review_page = client.get("/models/credit/versions/2/review/").content.decode()
    version_page = client.get("/models/credit/versions/2/").content.decode()
    markdown = client.get("/models/credit/versions/2/model-card/?format=md").content.decode()
    printable = client.get("/models/credit/versions/2/model-card/?format=html").content.decode()
    card = client.get("/models/credit/versions/2/model-card/?format=json").json()
    sentence = (
        "v2 uses the sensitive attribute sex as an input at prediction time: every prediction "
        "reads it, so its decisions depend on it directly and callers must send it."
    )
    for page in (review_page, version_page, markdown, printable):
        assert NOTICE in page and sentence in page
    assert "compliance officer acknowledges it when signing" in review_page
    assert card["version"]["sensitive_inputs"] == ["sex"]
    # The form asks for the acknowledgement in words too.
    assert "I acknowledge that this version uses sex at prediction time" in review_page
    # v1 reads none of them: no notice.
    assert NOTICE not in client.get("/models/credit/versions/1/").content.decode()


def test_the_compliance_officer_approves_only_by_acknowledging_them(personas, reads_sex):
    review = reviews.review_submit(actor=personas.owner, version=reads_sex)
    item = acknowledgement(review)
    assert item["met"] is False
    assert item["why"] == (
        "It uses sex at prediction time; the compliance officer has not acknowledged sex yet."
    )
    sign(personas.owner, reads_sex)
    sign(personas.validator, reads_sex)
    before = SignOff.objects.count()
    with pytest.raises(DomainError) as excinfo:
        sign(personas.compliance, reads_sex)
    assert excinfo.value.code == "acknowledgement_required" and excinfo.value.status == 400
    assert excinfo.value.details == {
        "acknowledge_sensitive_inputs": "required",
        "sensitive_inputs": ["sex"],
    }
    assert SignOff.objects.count() == before

    signoff = sign(personas.compliance, reads_sex, acknowledge_sensitive_inputs=True)
    assert signoff.acknowledged_sensitive_inputs == ["sex"]
    review.refresh_from_db()
    assert review.state == "approved"
    assert acknowledgement(review) == {
        "requirement": "acknowledgement:sensitive_inputs",
        "met": True,
        "status": "passed",
        "why": "compliance (compliance officer) acknowledged that it uses sex at prediction time.",
    }


def test_the_acknowledgement_is_given_through_the_api_too(personas, reads_sex, settings):
    from tests.conftest import client_for
    from tests.governance.review_support import PASSWORD

    settings.GOVERNANCE_API_SIGNOFF_TIERS = ["high"]
    reviews.review_submit(actor=personas.owner, version=reads_sex)
    url = "/api/v1/models/credit/versions/2/review/signoffs/"
    body = {"decision": "approve", "meaning": "approved_for_deployment", "password": PASSWORD}
    refused = client_for(personas.compliance).post(url, body, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "acknowledgement_required"
    signed = client_for(personas.compliance).post(
        url, {**body, "acknowledge_sensitive_inputs": True}, format="json"
    )
    assert signed.status_code == 201, signed.json()
    assert signed.json()["acknowledged_sensitive_inputs"] == ["sex"]


def test_a_version_without_sensitive_inputs_meets_the_item_and_other_roles_need_not_acknowledge(
    personas, reads_sex
):
    v1 = reads_sex.registered_model.versions.get(number=1)
    review = reviews.review_submit(actor=personas.owner, version=v1)
    assert acknowledgement(review)["met"] is True
    assert acknowledgement(review)["why"] == "No sensitive attribute is an input of this version."
    for user in (personas.owner, personas.validator, personas.compliance):
        sign(user, v1)
    assert Review.objects.get(pk=review.pk).state == "approved"
    # On v2 only the role the policy names must acknowledge: the validator approves without.
    reviews.review_submit(actor=personas.owner, version=reads_sex)
    assert sign(personas.validator, reads_sex).acknowledged_sensitive_inputs == []


def test_a_policy_without_the_requirement_has_no_such_item(personas):
    version = high_risk_version(personas)
    ApprovalPolicy.objects.filter(risk_tier="high").update(sensitive_inputs_acknowledged_by="")
    review = reviews.review_submit(actor=personas.owner, version=version)
    requirements = [i["requirement"] for i in selectors.review_checklist(review=review)]
    assert "acknowledgement:sensitive_inputs" not in requirements


def test_only_a_required_role_can_be_named_to_acknowledge(personas):
    admin = personas.owner
    admin.is_superuser = True
    with pytest.raises(DomainError) as excinfo:
        policies.policy_create(
            actor=admin,
            risk_tier="medium",
            required_roles=["owner", "validator"],
            sensitive_inputs_acknowledged_by="compliance",
        )
    assert excinfo.value.code == "invalid"
    assert excinfo.value.details["sensitive_inputs_acknowledged_by"] == "compliance"


def test_the_data_migration_leaves_frozen_reviews_as_they_were(personas):
    """Migration 0007: an unused high policy is corrected in place; a used one is
    followed by a new version, so the review that froze it keeps its policy."""
    migration = importlib.import_module(
        "governance.migrations.0007_high_risk_acknowledges_sensitive_inputs"
    )
    ApprovalPolicy.objects.filter(risk_tier="high").update(sensitive_inputs_acknowledged_by="")
    current = policies.policy_current(risk_tier="high")

    migration.require_acknowledgement(global_apps, None)
    current.refresh_from_db()
    assert current.sensitive_inputs_acknowledged_by == "compliance"
    assert policies.policy_current(risk_tier="high") == current

    ApprovalPolicy.objects.filter(pk=current.pk).update(sensitive_inputs_acknowledged_by="")
    review = reviews.review_submit(actor=personas.owner, version=high_risk_version(personas))
    migration.require_acknowledgement(global_apps, None)
    newer = policies.policy_current(risk_tier="high")
    assert newer.version == current.version + 1
    assert newer.sensitive_inputs_acknowledged_by == "compliance"
    assert newer.required_roles == current.required_roles
    assert newer.thresholds == current.thresholds
    review.refresh_from_db()
    assert review.policy_id == current.pk
    assert review.policy.sensitive_inputs_acknowledged_by == ""
    assert "acknowledgement:sensitive_inputs" not in [
        i["requirement"] for i in selectors.review_checklist(review=review)
    ]
