"""Concurrent sign-offs on one review (PostgreSQL: real row locks, threads, committed data)."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections

from common.errors import DomainError
from governance import reviews
from governance.models import Review, ReviewTransition, SignOff
from tests.conftest import grant, make_user
from tests.governance.review_support import high_risk_version, sign

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real row locks"),
]


def race(*calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            outcomes[i] = call()
        except DomainError as exc:
            outcomes[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_the_last_two_sign_offs_at_once_approve_exactly_once(personas):
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    sign(personas.owner, version)
    outcomes = race(
        lambda: sign(personas.validator, version), lambda: sign(personas.compliance, version)
    )
    assert all(isinstance(o, SignOff) for o in outcomes), outcomes
    review = Review.objects.get(version=version)
    assert review.state == "approved"
    assert list(
        ReviewTransition.objects.filter(review=review).values_list("to_state", flat=True)
    ) == ["in_review", "approved"]
    assert SignOff.objects.filter(review=review, valid=True).count() == 3


def test_two_validators_racing_for_one_role_leave_one_sign_off(personas):
    version = high_risk_version(personas)
    second = make_user("validator2", Group.objects.get(name="model-validation"))
    grant(version.registered_model, second, "approver")
    reviews.review_submit(actor=personas.owner, version=version)
    outcomes = race(lambda: sign(personas.validator, version), lambda: sign(second, version))
    errors = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(errors) == 1 and errors[0].code in ("role_filled", "no_role"), outcomes
    assert SignOff.objects.filter(role="validator", valid=True).count() == 1
    assert Review.objects.get(version=version).state == "in_review"
