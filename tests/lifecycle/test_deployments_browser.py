"""The Deployments panel in a real browser: deploy, watch it switch, roll back."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import log_in, shot
from tests.lifecycle.deploy_support import (
    approve,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_owner_deploys_and_rolls_back_from_the_model_page(page, personas):
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    v2 = approve(new_version(model, personas, seed=1), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    deploy(fresh(production), v2, personas.owner)

    log_in(page, "owner")
    page.goto("/models/churn/")
    panel = page.locator("#panel-deployments")
    expect(panel.locator("#env-production .stable-version")).to_have_text("v2")
    panel.locator("#env-production input[name=reason]").fill("checkout errors after v2")
    panel.locator("#env-production .rollback-form button").click()
    # htmx swaps the panel in place: v1 is stable again, the reason is in the history.
    expect(page.locator("#env-production .stable-version")).to_have_text("v1")
    expect(page.locator("#env-production .env-history")).to_contain_text("checkout errors after v2")
    expect(page.locator("#panel-deployments .messages")).to_contain_text("rolled back")
    assert fresh(production).stable_version == v1
    shot(page, "deployments-panel-after-rollback")
