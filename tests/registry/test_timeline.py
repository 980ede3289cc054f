"""A model's timeline (``registry.timeline``): the selector that merges every app's
entries, and ``GET /api/v1/models/{name}/timeline/``.

The history is the demo's (versions, reviews and sign-offs, alerts, retraining runs,
deployments) plus a redeploy and a rollback of credit-default's staging; it is restored
once for the module (the session's snapshot of the demo, tests/demo_support.py) inside a
transaction that is rolled back at the end, and each test runs in a savepoint inside it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from governance.models import ReviewTransition, SignOff
from lifecycle import deployments
from lifecycle.models import Deployment, Environment, EnvironmentTransition, RetrainingRun
from monitoring.models import Alert
from registry import timeline
from registry.models import ModelVersion, RegisteredModel
from tests.conftest import client_for
from tests.lifecycle.deploy_support import deploy, fresh

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/credit-default/timeline/"


@pytest.fixture(scope="module")
def history(django_db_setup: Any, django_db_blocker: Any, demo_data: Any) -> Any:
    with django_db_blocker.unblock(), transaction.atomic():
        demo_data.restore()
        credit = RegisteredModel.objects.get(name="credit-default")
        owner = User.objects.get(username="owner")
        staging = Environment.objects.get(registered_model=credit, name="staging")
        other = (
            credit.versions.filter(status="ready")
            .exclude(pk=staging.stable_version_id)
            .order_by("-number")
            .first()
        )
        assert deploy(staging, other, owner).state == "succeeded"
        deployments.environment_rollback(
            actor=owner, environment=fresh(staging), reason="latency doubled after the switch"
        )
        yield credit
        transaction.set_rollback(True)


def user(name: str) -> User:
    return User.objects.get(username=name)


def every_entry(model: RegisteredModel, who: User) -> list[timeline.TimelineEntry]:
    entries, more = timeline.timeline_list(user=who, model=model, limit=timeline.MAX_PAGE_SIZE)
    assert not more
    return entries


def test_every_kind_of_the_loop_is_on_the_timeline_once_per_row(history: RegisteredModel) -> None:
    entries = every_entry(history, user("auditor"))
    by_kind: dict[str, set[int]] = {}
    for e in entries:
        by_kind.setdefault(e.kind, set()).add(e.id)
    credit = history
    assert by_kind["version"] == set(credit.versions.values_list("pk", flat=True))
    assert by_kind["alert"] == set(
        Alert.objects.filter(registered_model=credit).values_list("pk", flat=True)
    )
    assert by_kind["retraining_run"] == set(
        RetrainingRun.objects.filter(registered_model=credit).values_list("pk", flat=True)
    )
    assert by_kind["review"] == set(
        ReviewTransition.objects.filter(review__version__registered_model=credit).values_list(
            "pk", flat=True
        )
    )
    assert by_kind["signoff"] == set(
        SignOff.objects.filter(review__version__registered_model=credit).values_list(
            "pk", flat=True
        )
    )
    assert by_kind["deployment"] == set(
        Deployment.objects.filter(environment__registered_model=credit).values_list("pk", flat=True)
    )
    assert by_kind["rollback"] == set(
        EnvironmentTransition.objects.filter(
            environment__registered_model=credit, event="rolled_back"
        ).values_list("pk", flat=True)
    )
    assert set(by_kind) == set(timeline.KINDS)
    assert all(by_kind[k] for k in timeline.KINDS)
    # Nothing of the other demo model leaks in.
    diabetes_versions = set(
        ModelVersion.objects.filter(registered_model__name="diabetes").values_list("pk", flat=True)
    )
    assert not by_kind["version"] & diabetes_versions


def test_entries_are_newest_first_and_link_to_their_pages(history: RegisteredModel) -> None:
    entries = every_entry(history, user("auditor"))
    keys = [e.key for e in entries]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    rollback = next(e for e in entries if e.kind == "rollback")
    assert rollback.detail == "latency doubled after the switch"
    assert rollback.actor == "owner"
    # The rollback comes after the redeploy it undid, and after the deployment it ended.
    redeploy = max((e for e in entries if e.kind == "deployment"), key=lambda e: e.at)
    assert rollback.at >= redeploy.at
    urls = {e.kind: e.url for e in entries}
    assert urls["version"].startswith("/models/credit-default/versions/")
    assert urls["review"].endswith("/review/")
    assert urls["signoff"].endswith("/review/#signoffs")
    assert urls["alert"].startswith("/monitoring/models/credit-default/#alert-")
    assert urls["retraining_run"].startswith("/models/credit-default/retraining/runs/")
    assert urls["deployment"].startswith("/models/credit-default/#deployment-")
    browser = Client()
    browser.force_login(user("auditor"))
    for url in urls.values():
        assert browser.get(url.split("#")[0]).status_code == 200, url


def test_only_what_the_user_may_see_reaches_the_timeline(history: RegisteredModel) -> None:
    # Model-level: the outsider cannot even name the model (404, no existence leak).
    response = client_for(user("outsider")).get(URL)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # Source-level: handed the model anyway, each source's visible_to() returns nothing.
    assert every_entry(history, user("outsider")) == []
    # Someone granted on the model sees exactly what the auditor sees.
    granted = every_entry(history, user("validator"))
    assert [e.key for e in granted] == [e.key for e in every_entry(history, user("auditor"))]


def test_filters_by_kind_and_since_and_pages_without_gaps_or_repeats(
    history: RegisteredModel,
) -> None:
    auditor = user("auditor")
    everything = every_entry(history, auditor)
    only = timeline.timeline_list(user=auditor, model=history, kinds=["alert", "rollback"])[0]
    assert {e.kind for e in only} == {"alert", "rollback"}
    assert only == [e for e in everything if e.kind in ("alert", "rollback")]

    middle = everything[len(everything) // 2].at
    since = timeline.timeline_list(user=auditor, model=history, since=middle, limit=200)[0]
    assert since == [e for e in everything if e.at >= middle]

    seen: list[timeline.TimelineEntry] = []
    cursor = None
    while True:
        page, more = timeline.timeline_list(user=auditor, model=history, cursor=cursor, limit=7)
        seen += page
        if not more:
            break
        cursor = timeline.parse_cursor(page[-1].cursor)
    assert seen == everything


def test_the_api_pages_through_the_timeline_with_its_filters(history: RegisteredModel) -> None:
    api = client_for(user("validator"))
    response = api.get(URL, {"page_size": 5})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "results"}
    assert len(body["results"]) == 5
    first = body["results"][0]
    assert set(first) == {
        "kind", "id", "at", "title", "status", "actor", "version", "detail", "url", "extra",
    }  # fmt: skip
    assert first["url"].startswith("http://testserver/")
    collected = body["results"]
    while body["next"]:
        body = api.get(body["next"]).json()
        collected += body["results"]
    expected = every_entry(history, user("validator"))
    assert [(r["kind"], r["id"]) for r in collected] == [(e.kind, e.id) for e in expected]

    since = expected[len(expected) // 2].at
    response = api.get(URL, {"kind": ["alert", "version,rollback"], "since": since.isoformat()})
    assert response.status_code == 200
    kinds = {r["kind"] for r in response.json()["results"]}
    assert kinds <= {"alert", "version", "rollback"}
    assert all(
        dt.datetime.fromisoformat(r["at"].replace("Z", "+00:00")) >= since
        for r in response.json()["results"]
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"kind": "deploys"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "10000"}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "2026-01-01T00:00:00~alert~1"}, "cursor"),  # naive time
    ],
)
def test_the_api_refuses_bad_filters_with_a_clear_400(
    history: RegisteredModel, params: dict[str, str], field: str
) -> None:
    response = client_for(user("validator")).get(URL, params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["details"], error
