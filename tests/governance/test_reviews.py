"""The review workflow through its services: sign-offs, SoD, evidence, expiry, the deploy gate."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from common.audit import SystemActor
from common.errors import DomainError
from common.evidence import policy_thresholds
from common.models import AuditEvent
from governance import policies, reviews, selectors
from governance.models import ApprovalPolicy, Review, ReviewTransition, SignOff
from registry import services as registry_services
from registry.models import Alias
from tests.conftest import SIGNATURE, classifier_bytes, create_model, grant, ready_version, validate
from tests.governance.review_support import HIGH_EVIDENCE, file_evidence, high_risk_version, sign

pytestmark = pytest.mark.django_db


def deploy(actor, version, alias="production", **kwargs):
    return registry_services.alias_set(
        actor=actor,
        model=version.registered_model,
        name=alias,
        version_number=version.number,
        **kwargs,
    )


def state_of(version):
    return Review.objects.get(version=version).state


def snapshot_counts():
    return (
        SignOff.objects.count(),
        ReviewTransition.objects.count(),
        AuditEvent.objects.count(),
        list(Review.objects.values_list("state", flat=True)),
    )


class TestPolicies:
    def test_each_tier_has_a_seeded_policy_with_its_roles(self):
        roles = {p.risk_tier: p.required_roles for p in ApprovalPolicy.objects.filter(version=1)}
        assert roles == {
            "low": ["owner"],
            "medium": ["owner", "validator"],
            "high": ["owner", "validator", "compliance"],
        }
        assert ApprovalPolicy.objects.get(risk_tier="high", version=1).independent_validator

    def test_a_used_policy_cannot_be_edited_but_a_new_version_can_be_added(self, personas):
        version = high_risk_version(personas)
        review = reviews.review_submit(actor=personas.owner, version=version)
        policy = review.policy
        policy.validity_days = 1
        with pytest.raises(DomainError) as excinfo:
            policy.save()
        assert excinfo.value.code == "policy_in_use"
        assert ApprovalPolicy.objects.get(pk=policy.pk).validity_days == 90
        with pytest.raises(DomainError):
            policies.policy_create(actor=personas.owner, risk_tier="high", required_roles=["owner"])
        admin = personas.owner
        admin.is_superuser = True
        newer = policies.policy_create(
            actor=admin, risk_tier="high", required_roles=["owner"], validity_days=30
        )
        assert newer.version == 2
        # The submitted review keeps the policy it froze.
        assert Review.objects.get(pk=review.pk).policy_id == policy.pk

    def test_thresholds_come_from_the_frozen_policy(self, personas):
        version = high_risk_version(personas, evidence=False)
        assert policy_thresholds(version, "evaluation_report") == {"roc_auc": {"min": 0.6}}
        reviews.review_submit(actor=personas.owner, version=version)
        admin = personas.owner
        admin.is_superuser = True
        policies.policy_create(
            actor=admin,
            risk_tier="high",
            required_roles=["owner"],
            thresholds={"evaluation_report": {"roc_auc": {"min": 0.99}}},
        )
        assert policy_thresholds(version, "evaluation_report") == {"roc_auc": {"min": 0.6}}
        other = ready_version(version.registered_model, personas.bot)
        assert policy_thresholds(other, "evaluation_report") == {"roc_auc": {"min": 0.99}}


class TestFullHighRiskReview:
    def test_three_signers_approve_and_the_version_can_be_deployed(self, personas):
        version = high_risk_version(personas)
        with pytest.raises(DomainError) as excinfo:
            deploy(personas.owner, version)
        assert excinfo.value.code == "not_approved"
        assert excinfo.value.details["requirement"] == "approved_review"

        review = reviews.review_submit(actor=personas.owner, version=version)
        assert review.state == "in_review" and review.policy.risk_tier == "high"
        # The validator and compliance officer are emailed (after commit in real life).
        sign(personas.owner, version, meaning="reviewed")
        assert state_of(version) == "in_review"
        sign(personas.validator, version, meaning="validated")
        assert state_of(version) == "in_review"
        checklist = {i["requirement"]: i["met"] for i in selectors.review_checklist(review=review)}
        assert checklist["signoff:compliance"] is False and checklist["signoff:owner"] is True
        sign(personas.compliance, version)
        review.refresh_from_db()
        assert review.state == "approved"
        assert review.approved_until - review.decided_at == timedelta(days=90)
        assert [(t.from_state, t.to_state) for t in review.transitions.all()] == [
            ("draft", "in_review"),
            ("in_review", "approved"),
        ]
        signed = SignOff.objects.get(review=review, role="validator").evidence_sha256
        assert set(signed) == {"evaluation_report", "fairness_audit", "model_card"}
        actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
        assert actions.count("governance.signoff.created") == 3
        assert "governance.review.approved" in actions

        alias = deploy(personas.owner, version)
        assert alias.protected and alias.version_id == version.pk

    def test_submission_emails_the_people_whose_sign_off_is_needed_with_an_absolute_link(
        self, personas, django_capture_on_commit_callbacks, settings
    ):
        settings.SITE_URL = "https://modelgate.example"
        version = high_risk_version(personas)
        with django_capture_on_commit_callbacks(execute=True):
            reviews.review_submit(actor=personas.owner, version=version)
        assert len(mail.outbox) == 1
        assert set(mail.outbox[0].to) == {
            "owner@example.com",
            "validator@example.com",
            "compliance@example.com",
        }
        assert "credit v1" in mail.outbox[0].subject
        link = "https://modelgate.example/models/credit/versions/1/review/"
        assert f"\n{link}\n" in mail.outbox[0].body

    def test_a_failed_evidence_item_keeps_the_review_open_with_the_reason(self, personas):
        version = high_risk_version(personas, evidence=False)
        file_evidence(version, "evaluation_report")
        file_evidence(version, "model_card")
        file_evidence(version, "fairness_audit", passed=False)
        reviews.review_submit(actor=personas.owner, version=version)
        # "Reviewed" claims no more than it says; "approved for deployment" is refused.
        for user in (personas.owner, personas.validator, personas.compliance):
            sign(user, version, meaning="reviewed")
        review = Review.objects.get(version=version)
        assert review.state == "in_review"
        missing = [i for i in selectors.review_checklist(review=review) if not i["met"]]
        assert [i["requirement"] for i in missing] == ["evidence:fairness_audit"]
        assert missing[0]["status"] == "failed" and "failed" in missing[0]["why"]

    def test_a_rejection_closes_the_review_and_changes_requested_go_back_to_draft(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        sign(personas.validator, version, decision="request_changes", comment="add a model card")
        assert state_of(version) == "changes_requested"
        review = reviews.review_submit(actor=personas.owner, version=version)
        assert review.state == "in_review"
        assert not SignOff.objects.filter(review=review, valid=True).exists()
        sign(personas.compliance, version, decision="reject", comment="not for this purpose")
        assert state_of(version) == "rejected"
        with pytest.raises(DomainError) as excinfo:
            sign(personas.owner, version)
        assert excinfo.value.code == "not_in_review"


class TestRefusals:
    def test_the_author_of_a_version_may_not_sign_it_as_an_independent_role(self, personas):
        version = high_risk_version(personas, evidence=False)
        model = version.registered_model
        grant(model, personas.validator, "contributor")  # a validator who also registers
        authored = ready_version(model, personas.validator)
        reviews.review_submit(actor=personas.owner, version=authored)
        before = snapshot_counts()
        with pytest.raises(DomainError) as excinfo:
            sign(personas.validator, authored)
        assert excinfo.value.code == "sod_registrant" and excinfo.value.status == 403
        assert excinfo.value.details == {"rule": "author_not_independent", "role": "validator"}
        assert excinfo.value.message == (
            "You registered this version, so you may not sign it as the independent validator: "
            "that role checks the author's work and must be someone else."
        )
        assert snapshot_counts() == before
        assert authored not in [r.version for r in selectors.waiting_for(user=personas.validator)]

    def test_the_owner_who_registered_a_version_may_still_attest_to_it_as_owner(self, personas):
        model = create_model(personas.owner, name="solo", risk_tier="low")
        version = ready_version(model, personas.owner)
        file_evidence(version, "evaluation_report")
        reviews.review_submit(actor=personas.owner, version=version)
        assert [r.version for r in selectors.waiting_for(user=personas.owner)] == [version]
        assert sign(personas.owner, version).role == "owner"
        assert state_of(version) == "approved"

    def test_who_only_requested_a_job_is_not_the_author_of_its_version(self, personas):
        """A job's version has no human author: the person who asked for the job (here
        the validator, say for a retraining) still signs in their independent role."""
        version = high_risk_version(personas)
        produced = registry_services.model_version_register(
            actor=SystemActor("tests.job#1"),
            model=version.registered_model,
            artifact=io.BytesIO(classifier_bytes()),
            signature_inputs=SIGNATURE,
            requested_by=grant(version.registered_model, personas.validator, "contributor"),
        )
        produced = validate(produced)
        assert produced.created_by is None and produced.requested_by == personas.validator
        for kind in HIGH_EVIDENCE:
            file_evidence(produced, kind)
        reviews.review_submit(actor=personas.owner, version=produced)
        for user in (personas.owner, personas.validator, personas.compliance):
            assert produced in [r.version for r in selectors.waiting_for(user=user)]
            sign(user, produced)
        assert state_of(produced) == "approved"

    def test_one_person_cannot_hold_two_required_roles(self, personas):
        version = high_risk_version(personas)
        personas.validator.groups.add(Group.objects.get(name="compliance"))
        reviews.review_submit(actor=personas.owner, version=version)
        sign(personas.validator, version, role="validator")
        before = snapshot_counts()
        with pytest.raises(DomainError) as excinfo:
            sign(personas.validator, version, role="compliance")
        assert excinfo.value.code == "sod_two_roles"
        assert excinfo.value.details == {"rule": "one_person_one_role", "held_role": "validator"}
        assert snapshot_counts() == before

    def test_a_high_risk_validator_must_not_be_on_the_owning_team(self, personas):
        version = high_risk_version(personas)
        personas.validator.groups.add(personas.team)
        reviews.review_submit(actor=personas.owner, version=version)
        before = snapshot_counts()
        with pytest.raises(DomainError) as excinfo:
            sign(personas.validator, version)
        assert excinfo.value.code == "sod_not_independent"
        assert excinfo.value.details["team"] == "credit-risk"
        assert snapshot_counts() == before

    def test_a_medium_risk_validator_may_be_on_the_team(self, personas):
        model = create_model(personas.owner, name="mid", risk_tier="medium", team=personas.team)
        grant(model, personas.validator, "approver")
        grant(model, personas.bot, "contributor")
        version = ready_version(model, personas.bot)
        personas.validator.groups.add(personas.team)
        file_evidence(version, "evaluation_report")
        file_evidence(version, "model_card")
        reviews.review_submit(actor=personas.owner, version=version)
        sign(personas.validator, version)
        sign(personas.owner, version)
        assert state_of(version) == "approved"

    def test_a_wrong_password_signs_nothing(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        before = snapshot_counts()
        with pytest.raises(DomainError) as excinfo:
            sign(personas.validator, version, password="not-my-password")
        assert excinfo.value.code == "wrong_password" and excinfo.value.status == 403
        assert snapshot_counts() == before

    def test_someone_without_a_role_cannot_sign(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        with pytest.raises(DomainError) as excinfo:
            sign(personas.viewer, version)
        assert excinfo.value.code == "no_role"
        assert excinfo.value.details["your_roles"] == []

    def test_an_expired_approval_cannot_be_deployed(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        for user in (personas.owner, personas.validator, personas.compliance):
            sign(user, version)
        Review.objects.filter(version=version).update(
            approved_until=timezone.now() - timedelta(minutes=1)
        )
        with pytest.raises(DomainError) as excinfo:
            deploy(personas.owner, version)
        assert excinfo.value.code == "approval_expired"
        assert excinfo.value.details["requirement"] == "unexpired_approval"
        assert not Alias.objects.exists()

    def test_a_deploy_of_an_unapproved_version_is_refused_for_every_protected_alias(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        for alias, extra in (("production", {}), ("gold", {"protected": True})):
            with pytest.raises(DomainError) as excinfo:
                deploy(personas.owner, version, alias=alias, **extra)
            assert excinfo.value.code == "not_approved"
            assert excinfo.value.details["review_state"] == "in_review"
        # Unprotected aliases are not gated; production cannot be unprotected.
        deploy(personas.owner, version, alias="staging")
        with pytest.raises(DomainError) as excinfo:
            deploy(personas.owner, version, protected=False)
        assert excinfo.value.code == "always_protected"
        assert list(Alias.objects.values_list("name", flat=True)) == ["staging"]

    def test_an_approved_version_still_needs_the_deploy_right(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        for user in (personas.owner, personas.validator, personas.compliance):
            sign(user, version)
        with pytest.raises(DomainError) as excinfo:
            deploy(personas.validator, version)
        assert excinfo.value.status == 403 and excinfo.value.details == {"action": "deploy"}
        assert not Alias.objects.exists()


class TestEvidenceChanges:
    def test_evidence_changed_after_signing_voids_the_sign_offs_and_reopens_the_review(
        self, personas
    ):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        for user in (personas.owner, personas.validator, personas.compliance):
            sign(user, version)
        assert state_of(version) == "approved"
        file_evidence(version, "fairness_audit", tag="rerun")
        review = Review.objects.get(version=version)
        assert review.state == "in_review" and review.approved_until is None
        assert not review.signoffs.filter(valid=True).exists()
        assert "fairness_audit changed" in review.signoffs.first().invalidated_reason
        with pytest.raises(DomainError) as excinfo:
            deploy(personas.owner, version)
        assert excinfo.value.code == "not_approved"
        # Signing again against the new evidence approves it again.
        for user in (personas.owner, personas.validator, personas.compliance):
            sign(user, version)
        assert state_of(version) == "approved"

    def test_refiling_identical_evidence_keeps_the_sign_offs(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        sign(personas.owner, version)
        file_evidence(version, "model_card")  # same digest
        assert SignOff.objects.get(role="owner").valid

    def test_evidence_arriving_last_completes_the_approval(self, personas):
        version = high_risk_version(personas, evidence=False)
        file_evidence(version, "evaluation_report")
        file_evidence(version, "fairness_audit")
        reviews.review_submit(actor=personas.owner, version=version)
        for user in (personas.owner, personas.validator, personas.compliance):
            sign(user, version, meaning="reviewed")
        assert state_of(version) == "in_review"
        file_evidence(version, "model_card")
        # The model card was required and not signed: the signers must see it.
        assert state_of(version) == "in_review"
        assert SignOff.objects.filter(valid=True).count() == 0


class TestResubmission:
    def test_resubmitting_voids_each_earlier_sign_off_once_with_an_audit_event(self, personas):
        version = high_risk_version(personas)
        reviews.review_submit(actor=personas.owner, version=version)
        sign(personas.owner, version)
        sign(personas.validator, version, decision="request_changes", meaning="validated")
        assert state_of(version) == "changes_requested"

        reviews.review_submit(actor=personas.owner, version=version)

        assert state_of(version) == "in_review"
        voided = list(SignOff.objects.filter(review__version=version))
        assert {(s.role, s.valid, s.invalidated_reason) for s in voided} == {
            ("owner", False, "resubmitted"),
            ("validator", False, "resubmitted"),
        }
        events = AuditEvent.objects.filter(action="governance.signoff.invalidated")
        assert sorted(e.object_id for e in events) == sorted(str(s.pk) for s in voided)
        assert {e.actor for e in events} == {"owner"}
        assert all(e.after == {"valid": False, "reason": "resubmitted"} for e in events)
        # The voided sign-offs stay voided: a later evidence change does not touch them.
        file_evidence(version, "model_card", tag="2")
        assert AuditEvent.objects.filter(action="governance.signoff.invalidated").count() == 2
