"""Governance loopholes: fields that an approval policy reads must not let anyone
pick a weaker gate for themselves (docs/governance.md, "Who can change what a
policy reads").

Each test fails on the code before this catalogue: the owner lowered the tier
with a PATCH, an API sign-off read the model's tier now, a team change skipped
the independence rule, evidence judged by another tier's thresholds counted,
a fairness audit on other columns replaced a failed one, and the owner could
unprotect or delete a protected alias to move it freely.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.core import mail

from common.errors import DomainError
from common.evidence import EVALUATION_REPORT, FAIRNESS_AUDIT, policy_thresholds
from common.models import AuditEvent
from governance import fairness_audits, policies, reviews, risk_tiers, selectors
from governance.models import Review, RiskTierChange
from governance.tasks import heavy_fairness_audit
from lifecycle import services as lifecycle_services
from lifecycle.tasks import heavy_evaluate
from registry import services as registry_services
from registry.models import Alias, RegisteredModel
from tests.conftest import (
    client_for,
    create_model,
    csv_bytes,
    grant,
    make_user,
    ready_version,
    training_frame,
)
from tests.evidence_support import audit_frame, upload
from tests.governance.review_support import PASSWORD, file_evidence, high_risk_version, sign

pytestmark = pytest.mark.django_db


def tier_of(model: RegisteredModel) -> str:
    return RegisteredModel.objects.get(pk=model.pk).risk_tier


def request_lowering(actor: User, model: RegisteredModel, tier: str = "low") -> RiskTierChange:
    return risk_tiers.risk_tier_change_request(
        actor=actor, model=model, risk_tier=tier, reason="the model only ranks internal leads now"
    )


# --- the risk tier ---------------------------------------------------------------------


def test_the_owner_cannot_lower_the_tier_with_a_patch_and_is_told_where_to_ask(personas):
    model = create_model(personas.owner, risk_tier="high")
    response = client_for(personas.owner).patch(
        "/api/v1/models/credit/", {"risk_tier": "low", "description": "x"}, format="json"
    )
    assert response.status_code == 409, response.json()
    error = response.json()["error"]
    assert error["code"] == "governed_change"
    assert error["details"]["request_url"] == "/api/v1/models/credit/risk-tier-changes/"
    assert "compliance" in error["message"]
    fresh = RegisteredModel.objects.get(pk=model.pk)
    assert fresh.risk_tier == "high" and fresh.description == ""  # nothing of the PATCH applied


def test_raising_is_immediate_but_lowering_it_back_is_a_request(personas):
    model = create_model(personas.owner, risk_tier="low")
    owner = client_for(personas.owner)
    assert (
        owner.patch("/api/v1/models/credit/", {"risk_tier": "high"}, format="json").json()[
            "risk_tier"
        ]
        == "high"
    )
    assert (
        owner.patch("/api/v1/models/credit/", {"risk_tier": "medium"}, format="json").status_code
        == 409
    )
    response = owner.post(
        "/api/v1/models/credit/risk-tier-changes/",
        {"risk_tier": "medium", "reason": "raised by mistake"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert (
        response.json()["state"] == "pending" and response.json()["approver_role"] == "compliance"
    )
    assert tier_of(model) == "high"
    # Asking to "lower" to a higher or equal tier is refused with the way to raise it.
    answer = owner.post(
        "/api/v1/models/credit/risk-tier-changes/",
        {"risk_tier": "high", "reason": "x"},
        format="json",
    )
    assert answer.status_code in (400, 409)


def test_a_lowering_takes_effect_only_when_a_compliance_officer_signs_it(
    personas, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://modelgate.example"
    model = create_model(personas.owner, risk_tier="high")
    compliance = grant(model, personas.compliance, "approver")
    with django_capture_on_commit_callbacks(execute=True):
        change = request_lowering(personas.owner, model)
    assert tier_of(model) == "high"
    assert mail.outbox[-1].to == ["compliance@example.com"]
    assert "\nhttps://modelgate.example/models/credit/\n" in mail.outbox[-1].body

    decided = risk_tiers.risk_tier_change_approve(
        actor=compliance, change=change, password=PASSWORD, comment="agreed, see ticket 12"
    )
    assert decided.state == "approved" and decided.decided_by == compliance
    assert tier_of(model) == "low"
    actions = list(
        AuditEvent.objects.filter(
            action__in=[
                "governance.risk_tier_change.requested",
                "governance.risk_tier_change.approved",
                "registry.model.updated",
            ]
        )
        .order_by("seq")
        .values_list("action", "actor")
    )
    assert actions == [
        ("governance.risk_tier_change.requested", "owner"),
        ("governance.risk_tier_change.approved", "compliance"),
        ("registry.model.updated", f"system:governance.risk_tier_change#{change.pk}"),
    ]
    requested = AuditEvent.objects.get(action="governance.risk_tier_change.requested")
    assert requested.after["reason"] == "the model only ranks internal leads now"
    # Approved is final: it cannot be decided again.
    with pytest.raises(DomainError) as excinfo:
        risk_tiers.risk_tier_change_reject(actor=compliance, change=decided, password=PASSWORD)
    assert excinfo.value.code == "invalid_transition"


def test_the_requester_never_decides_their_own_request(personas):
    model = create_model(personas.owner, risk_tier="high")
    personas.owner.groups.add(Group.objects.get(name="compliance"))
    owner = User.objects.get(pk=personas.owner.pk)
    change = request_lowering(owner, model)
    with pytest.raises(DomainError) as excinfo:
        risk_tiers.risk_tier_change_approve(actor=owner, change=change, password=PASSWORD)
    assert excinfo.value.code == "sod_requester" and excinfo.value.status == 403
    assert RiskTierChange.objects.get(pk=change.pk).state == "pending"
    assert tier_of(model) == "high"


def test_a_missing_role_or_a_wrong_password_decides_nothing(personas):
    model = create_model(personas.owner, risk_tier="high")
    validator = grant(model, personas.validator, "approver")
    compliance = grant(model, personas.compliance, "approver")
    change = request_lowering(personas.owner, model)
    with pytest.raises(DomainError) as excinfo:
        risk_tiers.risk_tier_change_approve(actor=validator, change=change, password=PASSWORD)
    assert excinfo.value.code == "no_role"
    with pytest.raises(DomainError) as excinfo:
        risk_tiers.risk_tier_change_approve(actor=compliance, change=change, password="guess")
    assert excinfo.value.code == "wrong_password"
    assert RiskTierChange.objects.get(pk=change.pk).state == "pending"
    assert tier_of(model) == "high"
    # Rejected with a reason: the tier stays, and the owner may ask again.
    risk_tiers.risk_tier_change_reject(
        actor=compliance, change=change, password=PASSWORD, comment="still scores customers"
    )
    assert tier_of(model) == "high"
    assert request_lowering(personas.owner, model).state == "pending"


def test_the_policy_may_give_the_decision_to_the_risk_role(personas, settings):
    admin = User.objects.create_superuser("admin", "admin@example.com", "x")
    policies.policy_create(
        actor=admin,
        risk_tier="high",
        required_roles=["owner", "validator", "compliance"],
        required_evidence=["evaluation_report"],
        tier_lowering_role="risk",
    )
    model = create_model(personas.owner, risk_tier="high")
    compliance = grant(model, personas.compliance, "approver")
    risk_officer = grant(
        model,
        make_user(
            "risk-officer", Group.objects.get_or_create(name=settings.GOVERNANCE_RISK_GROUP)[0]
        ),
        "approver",
    )
    change = request_lowering(personas.owner, model, "medium")
    assert change.approver_role == "risk"
    with pytest.raises(DomainError) as excinfo:
        risk_tiers.risk_tier_change_approve(actor=compliance, change=change, password=PASSWORD)
    assert excinfo.value.code == "no_role"
    risk_tiers.risk_tier_change_approve(actor=risk_officer, change=change, password=PASSWORD)
    assert tier_of(model) == "medium"


def test_api_decisions_follow_the_sign_off_channel_rule(personas, settings):
    model = create_model(personas.owner, risk_tier="high")
    compliance = grant(model, personas.compliance, "approver")
    change = request_lowering(personas.owner, model)
    url = f"/api/v1/models/credit/risk-tier-changes/{change.pk}/approve/"
    refused = client_for(compliance).post(url, {"password": PASSWORD}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ui_only"
    settings.GOVERNANCE_API_SIGNOFF_TIERS = ["high"]
    listed = client_for(compliance).get("/api/v1/models/credit/risk-tier-changes/")
    assert [c["state"] for c in listed.json()["results"]] == ["pending"]
    answer = client_for(compliance).post(url, {"password": PASSWORD}, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["state"] == "approved" and tier_of(model) == "low"


def test_a_review_frozen_before_a_lowering_keeps_its_policy_thresholds_and_channel(
    personas, settings
):
    version = high_risk_version(personas)
    model = version.registered_model
    review = reviews.review_submit(actor=personas.bot, version=version)
    high_policy = review.policy
    change = request_lowering(personas.owner, model)
    risk_tiers.risk_tier_change_approve(
        actor=User.objects.get(pk=personas.compliance.pk), change=change, password=PASSWORD
    )
    assert tier_of(model) == "low"

    review = Review.objects.get(pk=review.pk)
    assert review.policy == high_policy and review.state == "in_review"
    checklist = {i["requirement"]: i["met"] for i in selectors.review_checklist(review=review)}
    assert "signoff:compliance" in checklist and "evidence:fairness_audit" in checklist
    # Evidence jobs queued now are still judged by the frozen (high) thresholds.
    version.refresh_from_db()
    assert policy_thresholds(version, EVALUATION_REPORT) == {"roc_auc": {"min": 0.6}}
    # The low tier's API sign-off channel does not open to a review frozen as high.
    settings.GOVERNANCE_API_SIGNOFF_TIERS = ["low"]
    with pytest.raises(DomainError) as excinfo:
        reviews.signoff_create(
            actor=personas.owner,
            version=version,
            password=PASSWORD,
            decision="approve",
            meaning="approved_for_deployment",
            via_api=True,
        )
    assert excinfo.value.code == "ui_only"
    # A version submitted after the approved lowering is frozen under the low policy.
    later = ready_version(model, personas.bot)
    assert reviews.review_submit(actor=personas.bot, version=later).policy.risk_tier == "low"


def test_the_model_page_lets_the_compliance_officer_sign_the_lowering(personas, client):
    model = create_model(personas.owner, risk_tier="high")
    grant(model, personas.compliance, "approver")
    change = request_lowering(personas.owner, model)
    client.force_login(personas.compliance)
    page = client.get("/models/credit/").content.decode()
    assert 'id="risk-tier-pending"' in page and 'id="risk-tier-decide"' in page
    client.post(
        f"/models/credit/risk-tier-changes/{change.pk}/decide/",
        {"decision": "approve", "comment": "ok", "password": PASSWORD},
    )
    assert tier_of(model) == "low"
    client.force_login(personas.owner)
    assert 'id="risk-tier-decide"' not in client.get("/models/credit/").content.decode()


# --- the team (independent validator) -------------------------------------------------------


def test_the_team_cannot_change_while_a_review_needs_an_independent_validator(personas):
    version = high_risk_version(personas)
    model = version.registered_model
    reviews.review_submit(actor=personas.bot, version=version)
    response = client_for(personas.owner).patch(
        "/api/v1/models/credit/", {"team": None}, format="json"
    )
    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == "review_in_flight"
    assert RegisteredModel.objects.get(pk=model.pk).team == personas.team
    # So a validator from the owning team still cannot sign as independent.
    insider = grant(
        model,
        make_user("insider", personas.team, Group.objects.get(name="model-validation")),
        "approver",
    )
    with pytest.raises(DomainError) as excinfo:
        sign(insider, version, role="validator")
    assert excinfo.value.code == "sod_not_independent"


# --- evidence thresholds and sensitive features ------------------------------------------------


def test_evidence_judged_by_another_tiers_thresholds_does_not_count(personas):
    model = create_model(personas.owner, risk_tier="low", team=personas.team)
    grant(model, personas.bot, "contributor")
    version = ready_version(model, personas.bot)
    holdout = registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="holdout",
        role="evaluation",
        upload=io.BytesIO(csv_bytes(training_frame(400, seed=9))),
        filename="holdout.csv",
    )

    def evaluate() -> None:
        job = lifecycle_services.evaluation_start(
            actor=personas.bot, version=version, dataset=holdout, target_column="label"
        )
        heavy_evaluate.run(job.pk)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error

    evaluate()  # judged under the low tier: no metric floor at all
    raised = client_for(personas.owner).patch(
        "/api/v1/models/credit/", {"risk_tier": "high"}, format="json"
    )
    assert raised.status_code == 200
    version.registered_model.refresh_from_db()
    for kind in ("fairness_audit", "model_card"):
        file_evidence(version, kind)
    review = reviews.review_submit(actor=personas.bot, version=version)
    item = {i["requirement"]: i for i in selectors.review_checklist(review=review)}[
        "evidence:evaluation_report"
    ]
    assert item["met"] is False and "run it again" in item["why"]
    evaluate()  # queued now: frozen under the review's (high) thresholds
    item = {i["requirement"]: i for i in selectors.review_checklist(review=review)}[
        "evidence:evaluation_report"
    ]
    assert item["met"] is True, item["why"]


def test_a_fairness_audit_on_other_columns_cannot_replace_a_failed_one(personas):
    version = high_risk_version(personas, evidence=False)
    model = version.registered_model
    for kind in ("evaluation_report", "model_card"):
        file_evidence(version, kind)
    frame = audit_frame()
    # A column unrelated to the outcome (this draw passes every default rule).
    frame["region"] = np.random.default_rng(0).choice(["north", "south"], size=len(frame))
    dataset = upload(model, personas.bot, frame)
    review = reviews.review_submit(actor=personas.bot, version=version)

    def audit(columns: list[str]) -> bool:
        job = fairness_audits.fairness_audit_start(
            actor=personas.bot,
            version=version,
            dataset=dataset,
            target_column="label",
            sensitive_columns=columns,
        )
        heavy_fairness_audit.run(job.pk)
        job.refresh_from_db()
        assert job.status == "succeeded", job.error
        return bool(job.passed)

    assert audit(["sex"]) is False  # the data is biased on sex on purpose
    assert audit(["region"]) is True
    item = {i["requirement"]: i for i in selectors.review_checklist(review=review)}[
        "evidence:fairness_audit"
    ]
    assert item["met"] is False and "['sex']" in item["why"]
    assert policy_thresholds(version, FAIRNESS_AUDIT)["demographic_parity_ratio_min"] == 0.8


# --- the protected alias list ---------------------------------------------------------------------


def test_the_owner_cannot_drop_an_alias_protection_to_move_it_to_an_unapproved_version(personas):
    model = create_model(personas.owner, risk_tier="low", team=personas.team)
    grant(model, personas.bot, "contributor")
    approved = ready_version(model, personas.bot)
    file_evidence(approved, "evaluation_report")
    reviews.review_submit(actor=personas.bot, version=approved)
    sign(personas.owner, approved)
    assert Review.objects.get(version=approved).state == "approved"
    registry_services.alias_set(
        actor=personas.owner, model=model, name="gold", version_number=1, protected=True
    )
    unapproved = ready_version(model, personas.bot)

    with pytest.raises(DomainError) as excinfo:
        registry_services.alias_set(
            actor=personas.owner,
            model=model,
            name="gold",
            version_number=unapproved.number,
            protected=False,
        )
    assert excinfo.value.code == "protection_admin_only"
    with pytest.raises(DomainError) as excinfo:
        registry_services.alias_delete(actor=personas.owner, model=model, name="gold")
    assert excinfo.value.code == "protection_admin_only"
    alias = Alias.objects.get(registered_model=model, name="gold")
    assert alias.protected and alias.version == approved


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_lowering_is_requested_and_signed_on_the_model_page_in_a_browser(page, personas):
    from playwright.sync_api import expect

    from tests.conftest import log_in, shot

    model = create_model(personas.owner, risk_tier="high")
    grant(model, personas.compliance, "approver")

    log_in(page, "owner")
    page.goto("/models/credit/")
    page.locator("#panel-risk-tier summary", has_text="Request a lower tier").click()
    form = page.locator("#risk-tier-request")
    form.locator("select[name=risk_tier]").select_option("medium")
    form.locator("textarea[name=reason]").fill("Scores internal leads only since 2026-10")
    form.locator("button[type=submit]").click()
    expect(page.locator("#risk-tier-pending")).to_contain_text("high → medium")
    expect(page.locator("#risk-tier-decide")).to_have_count(0)  # not the requester's to sign
    expect(page.locator("#risk-tier-current")).to_contain_text("High")
    page.context.clear_cookies()

    log_in(page, "compliance")
    page.goto("/models/credit/")
    decide = page.locator("#risk-tier-decide")
    decide.locator("select[name=decision]").select_option("approve")
    decide.locator("input[name=password]").fill("wrong")
    decide.locator("button[type=submit]").click()
    expect(page.locator("ul.messages")).to_contain_text("password is wrong")
    assert tier_of(model) == "high"
    decide = page.locator("#risk-tier-decide")
    decide.locator("select[name=decision]").select_option("approve")
    decide.locator("textarea[name=comment]").fill("Confirmed with the business owner")
    decide.locator("input[name=password]").fill(PASSWORD)
    decide.locator("button[type=submit]").click()
    expect(page.locator("#risk-tier-current")).to_contain_text("Medium")
    expect(page.locator("#panel-risk-tier")).to_contain_text("Confirmed with the business owner")
    shot(page, "risk-tier-lowered")
    assert tier_of(model) == "medium"
