"""Approval policies: defaults in code, versions added and corrected by administrators,
every write in the audit trail, a policy a review froze never changed."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from common.errors import DomainError
from common.models import AuditEvent
from governance import policies, reviews
from governance.apps import ensure_default_policies
from governance.models import ApprovalPolicy
from tests.governance.review_support import high_risk_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(personas):
    personas.owner.is_superuser = personas.owner.is_staff = True
    personas.owner.save()
    return personas.owner


@pytest.fixture
def unused(admin):
    return policies.policy_create(
        actor=admin,
        risk_tier="low",
        required_roles=["owner"],
        required_evidence=["evaluation_report"],
        description="draft",
    )


def change_form(policy, **changes):
    fields = {
        "required_roles": json.dumps(policy.required_roles),
        "required_evidence": json.dumps(policy.required_evidence),
        "thresholds": json.dumps(policy.thresholds),
        "validity_days": policy.validity_days,
        "tier_lowering_role": policy.tier_lowering_role,
        "description": policy.description,
        **changes,
    }
    if policy.independent_validator:
        fields["independent_validator"] = "on"
    return fields


def test_an_administrator_corrects_an_unused_policy_in_the_admin_and_the_trail_records_it(
    admin, unused
):
    client = Client()
    client.force_login(admin)
    url = f"/admin/governance/approvalpolicy/{unused.pk}/change/"
    response = client.post(
        url, change_form(unused, validity_days=30, required_roles='["owner", "validator"]')
    )
    assert response.status_code == 302
    unused.refresh_from_db()
    assert (unused.validity_days, unused.required_roles) == (30, ["owner", "validator"])
    event = AuditEvent.objects.get(action="governance.policy.updated")
    assert (event.actor, event.object_id) == ("owner", str(unused.pk))
    assert event.before["validity_days"] == 180 and event.after["validity_days"] == 30
    assert event.after["required_roles"] == ["owner", "validator"]


def test_the_admin_refuses_unknown_roles_as_a_form_error(admin, unused):
    client = Client()
    client.force_login(admin)
    url = f"/admin/governance/approvalpolicy/{unused.pk}/change/"
    response = client.post(url, change_form(unused, required_roles='["boss"]'))
    assert response.status_code == 200
    assert "Give a list of sign-off roles" in response.content.decode()
    unused.refresh_from_db()
    assert unused.required_roles == ["owner"]
    assert not AuditEvent.objects.filter(action="governance.policy.updated").exists()


def test_a_policy_update_is_for_administrators_on_unused_policies_and_editable_fields(
    personas, admin, unused
):
    with pytest.raises(DomainError) as refused:
        policies.policy_update(actor=personas.validator, policy=unused, description="mine")
    assert refused.value.status == 403
    with pytest.raises(DomainError) as refused:
        policies.policy_update(actor=admin, policy=unused, risk_tier="high")
    assert refused.value.status == 400 and refused.value.details == {"fields": ["risk_tier"]}
    with pytest.raises(DomainError) as refused:
        policies.policy_update(actor=admin, policy=unused, required_roles=[])
    assert refused.value.code == "invalid"

    version = high_risk_version(personas)
    review = reviews.review_submit(actor=personas.owner, version=version)
    with pytest.raises(DomainError) as refused:
        policies.policy_update(actor=admin, policy=review.policy, validity_days=1)
    assert (refused.value.status, refused.value.code) == (409, "policy_in_use")
    review.policy.refresh_from_db()
    assert review.policy.validity_days == 90
    assert not AuditEvent.objects.filter(action="governance.policy.updated").exists()


def test_the_default_policies_are_seeded_from_the_code(monkeypatch):
    low = {**policies.DEFAULT_POLICIES["low"], "description": "changed in code", "validity_days": 7}
    monkeypatch.setitem(policies.DEFAULT_POLICIES, "low", low)
    ApprovalPolicy.objects.all().delete()  # as a test flush leaves it

    ensure_default_policies(sender=None)

    seeded = ApprovalPolicy.objects.get(risk_tier="low", version=1)
    assert (seeded.description, seeded.validity_days) == ("changed in code", 7)
    assert set(ApprovalPolicy.objects.values_list("risk_tier", flat=True)) == {
        "low",
        "medium",
        "high",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real row locks")
def test_an_update_waits_for_a_submission_freezing_the_policy_then_is_refused(personas, admin):
    version = high_risk_version(personas)
    policy = policies.policy_current(risk_tier="high")
    submitted, release = threading.Event(), threading.Event()
    outcome: list = []

    def submit_and_hold():
        try:
            with transaction.atomic():
                reviews.review_submit(actor=personas.owner, version=version)
                submitted.set()
                release.wait(10)  # the review is not committed yet: only the lock protects
        finally:
            connections.close_all()

    def update():
        try:
            submitted.wait(10)
            outcome.append(policies.policy_update(actor=admin, policy=policy, validity_days=1))
        except DomainError as exc:
            outcome.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit_and_hold), threading.Thread(target=update)]
    for thread in threads:
        thread.start()
    threads[1].join(timeout=1)
    assert threads[1].is_alive(), "the update did not wait for the policy lock"
    release.set()
    for thread in threads:
        thread.join()
    assert isinstance(outcome[0], DomainError) and outcome[0].code == "policy_in_use"
    policy.refresh_from_db()
    assert policy.validity_days == 90
