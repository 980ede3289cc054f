"""Failed evidence is shown as failed, an approval for deployment over it is refused or
overridden with a written justification, and the deploy refusal says what blocks."""

from __future__ import annotations

import pytest

from common.audit import SystemActor
from common.errors import DomainError
from common.models import AuditEvent
from governance import policies, reviews, selectors
from governance.models import Review, SignOff
from registry import services as registry_services
from registry.models import Alias
from tests.conftest import client_for
from tests.governance.review_support import (
    PASSWORD,
    allow_override,
    failing_version,
    file_evidence,
    file_failed_audit,
    high_risk_version,
    sign,
)

pytestmark = pytest.mark.django_db


def checklist_of(version):
    review = Review.objects.get(version=version)
    return {i["requirement"]: i for i in selectors.review_checklist(review=review)}


def test_a_failed_audit_is_failed_with_its_rules_and_a_link_and_an_absent_card_is_missing(
    personas,
):
    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    items = checklist_of(version)
    audit = items["evidence:fairness_audit"]
    assert audit["status"] == "failed" and audit["met"] is False
    assert audit["rules"] == ["demographic_parity_ratio on sex: 0.6123 (threshold 0.8)"]
    assert audit["link"] == "/models/credit/versions/1/#panel-fairness"
    assert items["evidence:model_card"]["status"] == "missing"
    assert items["evidence:evaluation_report"]["status"] == "passed"
    assert items["signoff:owner"]["status"] == "missing"


def test_approving_for_deployment_over_failed_evidence_is_refused_with_one_reason(personas):
    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    with pytest.raises(DomainError) as excinfo:
        sign(personas.owner, version)
    error = excinfo.value
    assert error.code == "evidence_not_met" and error.status == 409
    assert "fairness audit failed; model card missing" in error.message
    assert "allows no override" in error.message
    assert [b["requirement"] for b in error.details["blocking"]] == [
        "evidence:fairness_audit",
        "evidence:model_card",
    ]
    assert not SignOff.objects.exists()
    # Signing what one did ("reviewed") stays possible; it approves nothing.
    sign(personas.owner, version, meaning="reviewed")
    assert Review.objects.get(version=version).state == "in_review"


def test_the_policy_s_override_role_approves_only_with_a_written_justification(personas):
    policy = allow_override("compliance")
    version = failing_version(personas)
    file_evidence(version, "model_card")  # only the audit fails now
    review = reviews.review_submit(actor=personas.owner, version=version)
    assert review.policy_id == policy.pk

    # Another role is told who may override.
    with pytest.raises(DomainError) as excinfo:
        sign(personas.validator, version)
    assert excinfo.value.code == "evidence_not_met"
    assert "only the compliance officer may override it" in excinfo.value.message

    # The override role without a justification: 400, the field named.
    with pytest.raises(DomainError) as excinfo:
        sign(personas.compliance, version, acknowledge_sensitive_inputs=True)
    assert excinfo.value.code == "override_justification_required"
    assert excinfo.value.status == 400
    assert excinfo.value.details["override_justification"] == "required"
    assert not SignOff.objects.exists()

    why = "Gap explained by the 2019 portfolio mix; monitored monthly, remediation plan R-12."
    signoff = sign(personas.compliance, version, override_justification=why)
    assert signoff.override_justification == why
    assert [o["requirement"] for o in signoff.overridden_requirements] == [
        "evidence:fairness_audit"
    ]
    assert signoff.overridden_requirements[0]["status"] == "failed"
    event = AuditEvent.objects.get(action="governance.signoff.created")
    assert event.after["override_justification"] == why
    assert event.after["overridden_requirements"][0]["requirement"] == "evidence:fairness_audit"

    audit = checklist_of(version)["evidence:fairness_audit"]
    assert audit["status"] == "overridden" and audit["met"] is True
    assert why in audit["why"] and "compliance" in audit["why"]
    # The override counts: the others approve for deployment and the review is approved.
    sign(personas.owner, version)
    sign(personas.validator, version)
    assert Review.objects.get(version=version).state == "approved"


def test_a_justification_with_nothing_to_override_is_refused(personas):
    allow_override("compliance")
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    with pytest.raises(DomainError) as excinfo:
        sign(personas.compliance, version, override_justification="x" * 40)
    assert excinfo.value.code == "nothing_to_override" and excinfo.value.status == 400


def test_new_evidence_voids_the_override(personas):
    allow_override("compliance")
    version = failing_version(personas)
    file_evidence(version, "model_card")
    reviews.review_submit(actor=personas.owner, version=version)
    sign(personas.compliance, version, override_justification="Accepted with a remediation plan.")
    file_failed_audit(version, tag="2")  # a new audit: the override judged another one
    assert checklist_of(version)["evidence:fairness_audit"]["status"] == "failed"
    assert not SignOff.objects.filter(valid=True).exists()


def test_an_override_role_must_be_a_required_role():
    fields = dict(
        policies.DEFAULT_POLICIES["medium"], evidence_override_by="compliance"
    )  # medium requires no compliance officer
    with pytest.raises(DomainError) as excinfo:
        policies.policy_create(actor=SystemActor("tests"), risk_tier="medium", **fields)
    assert excinfo.value.details["evidence_override_by"] == "compliance"


def test_the_deploy_refusal_names_failed_and_missing_items_and_the_sign_offs_needed(personas):
    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    sign(personas.owner, version, meaning="reviewed")
    with pytest.raises(DomainError) as excinfo:
        registry_services.alias_set(
            actor=personas.owner,
            model=version.registered_model,
            name="production",
            version_number=version.number,
        )
    error = excinfo.value
    assert error.code == "not_approved" and error.status == 409
    assert error.message == (
        "credit v1 cannot go to production: it is not approved (review: in_review). "
        "Failed: fairness audit. Missing: model card. "
        "Sign-offs still needed: independent validator, compliance officer."
    )
    assert [f["requirement"] for f in error.details["failed"]] == ["evidence:fairness_audit"]
    assert error.details["failed"][0]["rules"] == [
        "demographic_parity_ratio on sex: 0.6123 (threshold 0.8)"
    ]
    assert [m["requirement"] for m in error.details["missing"]] == ["evidence:model_card"]
    assert [s["role"] for s in error.details["signoffs_needed"]] == ["validator", "compliance"]
    assert not Alias.objects.exists()


def test_the_api_deploy_refusal_carries_the_blockers(personas):
    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    response = client_for(personas.owner).put(
        "/api/v1/models/credit/aliases/production", {"version": 1}, format="json"
    )
    assert response.status_code == 409, response.json()
    error = response.json()["error"]
    assert error["code"] == "not_approved"
    assert "Failed: fairness audit. Missing: model card." in error["message"]
    assert [s["role"] for s in error["details"]["signoffs_needed"]] == [
        "owner",
        "validator",
        "compliance",
    ]


def test_an_override_through_the_api_is_recorded_and_shown(personas, settings):
    settings.GOVERNANCE_API_SIGNOFF_TIERS = ["high"]
    allow_override("compliance")
    version = failing_version(personas)
    file_evidence(version, "model_card")
    reviews.review_submit(actor=personas.owner, version=version)
    url = "/api/v1/models/credit/versions/1/review/signoffs/"
    compliance = client_for(personas.compliance)
    body = {
        "decision": "approve",
        "meaning": "approved_for_deployment",
        "password": PASSWORD,
        "acknowledge_sensitive_inputs": True,
    }
    refused = compliance.post(url, body, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "override_justification_required"
    why = "Accepted: gap within the bank's tolerance; quarterly re-audit agreed."
    signed = compliance.post(url, {**body, "override_justification": why}, format="json")
    assert signed.status_code == 201, signed.json()
    assert signed.json()["override_justification"] == why
    review = client_for(personas.owner).get("/api/v1/models/credit/versions/1/review/").json()
    audit = {i["requirement"]: i for i in review["checklist"]}["evidence:fairness_audit"]
    assert audit["status"] == "overridden" and audit["met"] is True
    assert review["policy"]["evidence_override_by"] == "compliance"


def test_the_deploy_button_s_refusal_in_the_ui_names_what_blocks(personas, client):
    from tests.lifecycle.deploy_support import environment

    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    production = environment(version.registered_model)
    client.force_login(personas.owner)
    response = client.post(
        f"/models/credit/environments/{production.name}/deploy/", {"version": 1}, follow=True
    )
    text = response.content.decode()
    assert "it is not approved (review: in_review). Failed: fairness audit." in text
    assert "Missing: model card." in text
    assert "Sign-offs still needed: model owner, independent validator, compliance officer." in text


def test_a_rejected_review_s_refusal_names_who_declined_and_asks_for_no_more_sign_offs(
    personas,
):
    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    sign(personas.compliance, version, decision="reject", meaning="reviewed")
    with pytest.raises(DomainError) as excinfo:
        registry_services.alias_set(
            actor=personas.owner,
            model=version.registered_model,
            name="production",
            version_number=version.number,
        )
    message = excinfo.value.message
    assert "(review: rejected). Failed: fairness audit. Missing: model card." in message
    assert "Declined by: compliance officer." in message
    assert "still needed" not in message
    assert message.endswith("a new version must be registered and reviewed.")
