"""Retraining in a real browser: the owner sets a policy and retrains from the model page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lifecycle.models import RetrainingPolicy, RetrainingRun
from tests.conftest import log_in, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_owner_sets_a_schedule_and_retrains_now_with_a_reason(page, model, personas, parent):
    log_in(page, "owner")
    page.goto("/models/credit/")
    panel = page.locator("#panel-retraining")
    expect(panel).to_contain_text("No retraining policy")
    panel.locator("#retraining-policy-edit").click()
    page.fill("#id_schedule", "0 3 * * 1")
    page.fill("#id_cooldown_minutes", "15")
    page.click("#retraining-policy-form button[type=submit]")
    page.wait_for_url("**/models/credit/#panel-retraining")
    expect(panel).to_contain_text("0 3 * * 1")
    expect(panel.locator("#retraining-next-run")).to_contain_text("03:00 UTC")
    assert RetrainingPolicy.objects.get().cooldown_minutes == 15

    panel.locator("#retrain-now input[name=reason]").fill("new quarter of data")
    panel.locator("#retrain-now button[type=submit]").click()
    page.wait_for_url("**/retraining/runs/*/")
    expect(page.locator("#retraining-run-outcome")).to_contain_text("Queued")
    expect(page.locator("main")).to_contain_text("new quarter of data")
    run = RetrainingRun.objects.get()
    assert run.requested_by == personas.owner and run.reason == "new quarter of data"
    shot(page, "retraining-run-page")
