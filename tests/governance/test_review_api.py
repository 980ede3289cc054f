"""REST: submit and read a review with its checklist, sign-offs, policies, the audit trail."""

from __future__ import annotations

import pytest

from governance.models import Review, SignOff
from tests.conftest import client_for, create_model, ready_version
from tests.governance.review_support import PASSWORD, file_evidence, high_risk_version, sign

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit/versions/1/review/"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def test_submitting_freezes_the_policy_and_the_checklist_says_what_is_missing(personas):
    version = high_risk_version(personas, evidence=False)
    file_evidence(version, "evaluation_report")
    owner = client_for(personas.owner)
    draft = owner.get(URL).json()
    assert draft["state"] == "draft" and draft["policy"] is None
    response = owner.post(URL)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "in_review"
    assert body["policy"]["risk_tier"] == "high" and body["policy"]["version"] == 1
    checklist = {item["requirement"]: item for item in body["checklist"]}
    assert checklist["evidence:evaluation_report"]["met"] is True
    assert checklist["evidence:fairness_audit"] == {
        "requirement": "evidence:fairness_audit",
        "met": False,
        "status": "missing",
        "why": "No fairness audit filed.",
        "rules": [],
        "link": f"/models/{version.registered_model.name}/versions/1/#panel-fairness",
        "sha256": None,
    }
    assert checklist["signoff:validator"]["met"] is False
    # Not "approved for deployment" while the audit is missing: the validator validates.
    sign(personas.validator, version, meaning="validated")
    body = owner.get(URL).json()
    assert [s["signer"] for s in body["signoffs"]] == ["validator"]
    assert {i["requirement"]: i["met"] for i in body["checklist"]}["signoff:validator"] is True
    listing = owner.get(URL + "signoffs/").json()
    assert listing["count"] == 1 and listing["results"][0]["role"] == "validator"
    again = owner.post(URL)
    assert again.status_code == 409 and error_of(again)["code"] == "already_submitted"


def test_outsiders_get_404_and_viewers_cannot_submit(personas):
    high_risk_version(personas)
    assert client_for(personas.outsider).get(URL).status_code == 404
    from registry.models import RegisteredModel
    from tests.conftest import grant

    grant(RegisteredModel.objects.get(name="credit"), personas.viewer, "viewer")
    response = client_for(personas.viewer).post(URL)
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_api_sign_offs_are_refused_unless_the_tier_is_allowed(personas, settings):
    model = create_model(personas.owner, name="credit", risk_tier="low")
    from tests.conftest import grant

    grant(model, personas.bot, "contributor")
    version = ready_version(model, personas.bot)
    file_evidence(version, "evaluation_report")
    owner = client_for(personas.owner)
    owner.post(URL)
    body = {"decision": "approve", "meaning": "approved_for_deployment", "password": PASSWORD}
    refused = owner.post(URL + "signoffs/", body, format="json")
    assert refused.status_code == 403 and error_of(refused)["code"] == "ui_only"
    assert not SignOff.objects.exists()
    settings.GOVERNANCE_API_SIGNOFF_TIERS = ["low"]
    wrong = owner.post(URL + "signoffs/", {**body, "password": "nope"}, format="json")
    assert wrong.status_code == 403 and error_of(wrong)["code"] == "wrong_password"
    accepted = owner.post(URL + "signoffs/", body, format="json")
    assert accepted.status_code == 201, accepted.json()
    assert owner.get(URL).json()["state"] == "approved"


def test_policies_are_readable(personas):
    body = client_for(personas.viewer).get("/api/v1/policies/?risk_tier=medium").json()
    assert [(p["risk_tier"], p["required_roles"]) for p in body["results"]] == [
        ("medium", ["owner", "validator"])
    ]


def test_audit_events_are_for_auditors_only_and_filterable(personas):
    version = high_risk_version(personas)
    client_for(personas.owner).post(URL)
    refused = client_for(personas.owner).get("/api/v1/audit/events/")
    assert refused.status_code == 403 and error_of(refused)["code"] == "permission_denied"
    auditor = client_for(personas.auditor)
    body = auditor.get("/api/v1/audit/events/?action=governance.review.in_review").json()
    assert [e["object_id"] for e in body["results"]] == [str(version.review.pk)]
    assert set(body) == {"next", "previous", "results"}  # seek pagination: no count
    page = auditor.get("/api/v1/audit/events/?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    seqs = [e["seq"] for e in page["results"]]
    assert seqs == sorted(seqs, reverse=True)
