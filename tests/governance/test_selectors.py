"""Governance reads with rules: what each persona is shown, starting from ``visible_to``."""

from __future__ import annotations

import pytest
from django.test import Client

from governance import reviews, selectors
from registry import services as registry_services
from tests.conftest import create_model, grant, ready_version
from tests.governance.review_support import high_risk_version, sign

pytestmark = pytest.mark.django_db


def move(actor, version, alias):
    return registry_services.alias_set(
        actor=actor, model=version.registered_model, name=alias, version_number=version.number
    )


def web(user):
    client = Client()
    client.force_login(user)
    return client


def test_recent_deployments_are_those_of_visible_aliases_even_behind_many_hidden_ones(personas):
    credit = create_model(personas.owner, name="credit")
    grant(credit, personas.viewer, "viewer")
    move(personas.owner, ready_version(credit, personas.owner), "staging")
    fraud = create_model(personas.bot, name="fraud")
    hidden = ready_version(fraud, personas.bot)
    for i in range(12):  # newer than credit@staging, and not the viewer's to see
        move(personas.bot, hidden, f"canary-{i}")

    shown = list(selectors.recent_deployments(user=personas.viewer))
    assert [(e.object_repr, e.after["version"], e.actor) for e in shown] == [
        ("credit@staging", 1, "owner")
    ]
    theirs = list(selectors.recent_deployments(user=personas.bot))
    assert [e.object_repr for e in theirs] == [f"fraud@canary-{i}" for i in range(11, 1, -1)]
    assert list(selectors.recent_deployments(user=personas.outsider)) == []

    home = web(personas.viewer).get("/").content.decode()
    assert "credit@staging → v1 by owner" in home and "fraud@" not in home


def test_recent_decisions_and_the_review_list_show_only_visible_models(personas):
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    for signer in (personas.owner, personas.validator, personas.compliance):
        sign(signer, version)

    assert [r.version for r in selectors.recent_decisions(user=personas.validator)] == [version]
    assert list(selectors.recent_decisions(user=personas.outsider)) == []
    assert [r.state for r in selectors.review_list(user=personas.compliance)] == ["approved"]
    assert list(selectors.review_list(user=personas.compliance, state="in_review")) == []
    assert len(selectors.review_list(user=personas.compliance, state="no-such-state")) == 1
    assert list(selectors.review_list(user=personas.outsider)) == []


def test_the_sign_off_list_starts_from_what_the_user_may_see(personas):
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    first = sign(personas.owner, version)
    second = sign(personas.validator, version)

    assert list(selectors.signoff_list(user=personas.compliance, version=version)) == [
        first,
        second,
    ]
    assert list(selectors.signoff_list(user=personas.outsider, version=version)) == []
    listed = web(personas.compliance).get("/api/v1/models/credit/versions/1/review/signoffs/")
    assert [s["signer"] for s in listed.json()["results"]] == ["owner", "validator"]
