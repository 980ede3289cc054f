"""The registry pages in a real browser (Playwright driving the system Chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from registry import services
from tests.conftest import create_model, log_in, ready_version, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_viewer_finds_a_model_and_reads_a_version(page, model, personas):
    ready_version(model, personas.bot, metrics={"accuracy": 0.91})
    ready_version(model, personas.bot, parent_number=1)
    services.alias_set(actor=personas.bot, model=model, name="staging", version_number=2)
    create_model(personas.owner, name="unrelated", risk_tier="low", task="regression")

    log_in(page, "viewer")
    page.click("text=Models")
    assert page.locator("#model-table tbody td:first-child a").all_inner_texts() == ["credit"]

    page.fill("input[name=q]", "zzz")
    expect(page.locator("#model-table")).to_contain_text("No models match.")
    assert "q=zzz" in page.url  # htmx pushed the filter into the address bar
    page.fill("input[name=q]", "cre")
    page.locator("#model-table a", has_text="credit").click()

    assert "credit@staging" in page.locator("#aliases").inner_text()
    shot(page, "registry-model-page")
    page.locator("#versions a", has_text="v2").first.click()
    page.wait_for_url("**/models/credit/versions/2/")
    text = page.locator("main").inner_text()
    assert "LogisticRegression" in text
    assert "v1" in page.locator("#lineage").inner_text()
    assert "@staging" in page.locator("#metadata").inner_text()
    shot(page, "registry-version-page")

    page.click("button:has-text('Log out')")
    page.wait_for_url("**/login/")


def test_an_outsider_sees_no_models_and_gets_not_found(page, model, personas):
    ready_version(model, personas.bot)
    log_in(page, "outsider")
    page.goto("/models/")
    assert "No models match." in page.locator("#model-table").inner_text()
    response = page.goto("/models/credit/")
    assert response.status == 404
