"""Approval expiry notices: once before, once after, each claimed by one beat only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from common.events import register_event_listener
from common.models import AuditEvent
from config.celery import app
from governance import reviews
from governance.models import Review
from tests.governance.review_support import file_evidence, high_risk_version, sign
from tests.governance.test_reviews import deploy

pytestmark = pytest.mark.django_db


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    register_event_listener(lambda name, payload: seen.append((name, payload)))
    return seen


def approved(personas: Any) -> Any:
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    for user in (personas.owner, personas.validator, personas.compliance):
        sign(user, version)
    deploy(personas.owner, version)  # served as @production
    review = Review.objects.get(version=version)
    assert review.state == "approved"
    return review


def sweep(at: Any, capture: Any) -> int:
    with capture(execute=True):
        return reviews.approval_expiry_sweep(now=at)


def test_owners_hear_once_before_and_once_after_an_approval_expires(
    personas: Any, events: list[Any], django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.SITE_URL = "https://modelgate.example"
    review = approved(personas)
    until = review.approved_until
    mail.outbox.clear()
    events.clear()
    # Long before the warning window: nothing.
    assert sweep(until - timedelta(days=31), django_capture_on_commit_callbacks) == 0
    # Inside it: one warning, however often the beat runs.
    assert sweep(until - timedelta(days=29), django_capture_on_commit_callbacks) == 1
    assert sweep(until - timedelta(days=1), django_capture_on_commit_callbacks) == 0
    assert [e[0] for e in events] == ["governance.review.expiring"]
    assert events[0][1]["aliases"] == ["production"]
    (warning,) = mail.outbox
    assert warning.subject == f"[ModelGate] Approval expiring: {review.version}"
    assert personas.owner.email in warning.to
    assert "@production" in warning.body and "back to review" in warning.body
    # After it: one expiry notice.
    assert sweep(until + timedelta(minutes=1), django_capture_on_commit_callbacks) == 1
    assert sweep(until + timedelta(days=3), django_capture_on_commit_callbacks) == 0
    assert [e[0] for e in events] == ["governance.review.expiring", "governance.review.expired"]
    assert mail.outbox[-1].subject == f"[ModelGate] Approval expired: {review.version}"
    link = f"https://modelgate.example/models/{review.version.registered_model.name}/versions/{review.version.number}/review/"
    assert all(f"\n{link}\n" in message.body for message in mail.outbox)
    actions = list(
        AuditEvent.objects.filter(
            action__in=["governance.review.expiring", "governance.review.expired"]
        )
        .order_by("seq")
        .values_list("action", "actor")
    )
    assert actions == [
        ("governance.review.expiring", "system:governance.beat"),
        ("governance.review.expired", "system:governance.beat"),
    ]


def test_a_sweep_that_finds_an_approval_already_expired_sends_only_the_expiry(
    personas: Any, events: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    review = approved(personas)
    events.clear()
    assert sweep(review.approved_until + timedelta(days=2), django_capture_on_commit_callbacks) == 1
    assert [e[0] for e in events] == ["governance.review.expired"]


def test_a_new_approval_resets_the_notices(
    personas: Any, events: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    review = approved(personas)
    sweep(review.approved_until + timedelta(minutes=1), django_capture_on_commit_callbacks)
    review.refresh_from_db()
    assert review.expired_notified_at is not None
    # Fresh evidence voids the sign-offs (back to review); signing again re-approves.
    version = review.version
    file_evidence(version, "evaluation_report", tag="renewal")
    review.refresh_from_db()
    assert review.state == "in_review"
    for user in (personas.owner, personas.validator, personas.compliance):
        sign(user, version)
    review.refresh_from_db()
    assert review.state == "approved"
    assert review.expiry_warned_at is None and review.expired_notified_at is None
    assert review.approved_until > timezone.now()


def test_reviews_that_are_not_approved_are_never_noticed(
    personas: Any, django_capture_on_commit_callbacks: Any
) -> None:
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    Review.objects.filter(version=version).update(approved_until=timezone.now())
    assert sweep(timezone.now() + timedelta(days=400), django_capture_on_commit_callbacks) == 0


def test_the_sweep_is_on_the_beat_schedule_and_every_entry_names_a_task() -> None:
    app.loader.import_default_modules()  # the task autodiscovery a worker does at start
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "governance.tasks.approval_expiry_sweep" in scheduled
    assert scheduled <= set(app.tasks)
