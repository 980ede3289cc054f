"""The model page's Timeline panel as an auditor reads it, on the demo's history plus
a redeploy and a rollback of staging: every kind of the loop on one axis, newest
first, a filter per kind, older entries on demand, each entry a link to its page.

One test on the demo's data (the session's snapshot, tests/demo_support.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from lifecycle import deployments
from lifecycle.models import Environment
from registry import timeline
from registry.models import RegisteredModel
from registry.timeline_views import PANEL_SIZE
from tests.conftest import log_in, shot
from tests.lifecycle.deploy_support import deploy, fresh

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = "#panel-timeline tr.timeline-entry"


def test_an_auditor_reads_the_loop_of_a_model_on_one_timeline(page: Any, demo_data: Any) -> None:
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
    deploy(staging, other, owner)
    deployments.environment_rollback(
        actor=owner, environment=fresh(staging), reason="latency doubled after the switch"
    )
    for name in ("auditor", "outsider"):
        person = User.objects.get(username=name)
        person.set_password("correct-horse-9")
        person.save()
    auditor = User.objects.get(username="auditor")
    everything, _ = timeline.timeline_list(user=auditor, model=credit, limit=200)
    assert {e.kind for e in everything} == set(timeline.KINDS)

    log_in(page, "auditor")
    page.goto("/models/credit-default/")
    panel = page.locator("#panel-timeline")
    assert panel.locator("h2").inner_text() == "Timeline"
    # Newest first: the first rows are exactly the selector's first page.
    rows = page.locator(ROWS)
    assert rows.count() == PANEL_SIZE
    shown = [rows.nth(i).get_attribute("id") for i in range(rows.count())]
    assert shown == [f"timeline-{e.kind}-{e.id}" for e in everything[:PANEL_SIZE]]
    assert rows.first.get_attribute("data-kind") == "rollback"  # the newest step
    assert "latency doubled after the switch" in panel.inner_text()
    shot(page, "timeline-panel")

    # Older entries join the list below, without repeating any.
    page.click("#timeline-older button")
    rows.nth(PANEL_SIZE).wait_for()
    shown = [rows.nth(i).get_attribute("id") for i in range(rows.count())]
    assert shown == [f"timeline-{e.kind}-{e.id}" for e in everything[: len(shown)]]

    # A filter per kind: each shows only its kind, and every kind has entries.
    for kind in timeline.KINDS:
        page.click(f"#panel-timeline a[data-kind={kind}]")
        page.wait_for_selector(f"#panel-timeline a.selected[data-kind={kind}]")
        kinds = set(page.locator(ROWS).evaluate_all("rs => rs.map(r => r.dataset.kind)"))
        assert kinds == {kind}, (kind, kinds)
    shot(page, "timeline-panel-sign-offs")

    # Each entry is a link to its page: the sign-off to its review, the run to its run.
    page.click("#panel-timeline a[data-kind=signoff]")
    page.wait_for_selector("#panel-timeline a.selected[data-kind=signoff]")
    page.locator(f"{ROWS} a").first.click()
    page.wait_for_url("**/review/#signoffs")
    assert page.locator("h1").count() == 1
    page.goto("/models/credit-default/")
    page.click("#panel-timeline a[data-kind=retraining_run]")
    page.wait_for_selector("#panel-timeline a.selected[data-kind=retraining_run]")
    page.locator(f"{ROWS} a").first.click()
    page.wait_for_url("**/retraining/runs/*/")

    # Someone without access gets the 404 page, not an empty timeline.
    page.context.clear_cookies()
    log_in(page, "outsider")
    response = page.goto("/models/credit-default/timeline/")
    assert response.status == 404
