"""The deploy form in a real browser: the chosen strategy's options, a mistake shown at its
field, a canary started through the form whose analyses are drawn, then an A/B."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lifecycle import rollouts
from lifecycle.models import Deployment
from tests.conftest import ARTIFACT_DIR, log_in, shot
from tests.lifecycle.deploy_support import (
    approve,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
    run_deployment,
)
from tests.lifecycle.rollout_support import log_traffic, wait_until_due

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_owner_deploys_a_canary_sees_its_analysis_chart_then_runs_an_ab(page, personas):
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    v2 = approve(new_version(model, personas, seed=1), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)

    log_in(page, "owner")
    page.goto("/models/churn/")
    form = page.locator("#env-production form.deploy-form")
    canary = form.locator('fieldset[data-strategy="canary"]')
    ab = form.locator('fieldset[data-strategy="ab"]')
    # Direct: no options; each strategy shows its own (a stylesheet rule, no script).
    expect(canary).to_be_hidden()
    form.locator("select[name=strategy]").select_option("canary")
    expect(canary).to_be_visible()
    expect(ab).to_be_hidden()

    # A mistake comes back at its field, with what was typed, and starts nothing.
    canary.locator("input[name=canary-steps]").fill("50,10")
    canary.locator("input[name=canary-step_seconds]").fill("1")
    form.locator("button[type=submit]").click()
    error = page.locator('#env-production .field-error[data-field="canary-steps"]')
    expect(error).to_contain_text("must increase")
    expect(page.locator("#env-production input[name=canary-step_seconds]")).to_have_value("1")
    assert not Deployment.objects.filter(version=v2).exists()
    page.locator("#env-production form.deploy-form").screenshot(
        path=str(ARTIFACT_DIR / "deploy-form-canary-mistake.png")
    )

    page.locator("#env-production input[name=canary-steps]").fill("10,50,100")
    page.locator("#env-production input[name=canary-min_requests]").fill("20")
    page.locator("#env-production form.deploy-form button[type=submit]").click()
    expect(page.locator("#panel-deployments .messages")).to_contain_text("Deploying v2")
    deployment = Deployment.objects.get(version=v2)
    assert (deployment.steps, deployment.step_seconds) == ([10, 50, 100], 1.0)
    assert deployment.thresholds["min_requests"] == 20.0

    # The worker warms and replays, the first step's interval is analysed.
    deployment = run_deployment(deployment)
    production = fresh(production)
    log_traffic(production, v1, 80, seed=1, prefix="s")
    log_traffic(production, v2, 40, seed=2, prefix="c")
    wait_until_due(deployment)
    rollouts.rollout_check(deployment_id=deployment.pk)
    assert deployment.analyses.count() == 2

    page.goto("/models/churn/")
    fold = page.locator(f"#rollout-chart-{deployment.pk}")
    expect(fold.locator("summary")).to_contain_text("2 analyses over time")
    chart = fold.locator(".chart")
    if fold.get_attribute("open") is None:  # folded unless an analysis failed
        assert chart.locator(".main-svg").count() == 0
        fold.locator("summary").click()
    page.wait_for_function(
        f"document.querySelector('#rollout-chart-{deployment.pk} .chart .main-svg') !== null"
    )
    assert chart.bounding_box()["width"] > 500
    expect(chart).to_contain_text("Error rate")
    expect(chart).to_contain_text("Prediction drift")
    expect(page.locator(f"#deployment-{deployment.pk}").locator("xpath=..")).to_contain_text(
        "Replay before exposure"
    )
    shot(page, "deployments-canary-analysis-chart")

    # While the canary runs the panel polls; the chart opened stays open across swaps.
    page.wait_for_timeout(3500)
    expect(page.locator(f"#rollout-chart-{deployment.pk}")).to_have_attribute("open", "")
    page.wait_for_function(
        f"document.querySelector('#rollout-chart-{deployment.pk} .chart .main-svg') !== null"
    )

    # A form the reader has started to fill in is not replaced by a poll.
    reason = page.locator(f"#deployment-{deployment.pk} ~ tr .rollout-action input[name=reason]")
    reason.fill("checking the p99 first")
    page.locator("h1, h2").first.click()  # leave the field: only the typed value holds the poll
    page.wait_for_timeout(3500)
    expect(reason).to_have_value("checking the p99 first")

    # Abort it from the panel, then an A/B through the form.
    page.locator(f"#deployment-{deployment.pk} ~ tr button[value=abort]").click()
    expect(page.locator("#panel-deployments .messages")).to_contain_text("abort done")
    assert Deployment.objects.get(pk=deployment.pk).reason == "checking the p99 first"
    form = page.locator("#env-production form.deploy-form")
    form.locator("select[name=strategy]").select_option("ab")
    form.locator("input[name=ab-share]").fill("0.3")
    form.locator("input[name=ab-duration_seconds]").fill("3600")
    form.locator("select[name=ab-metric]").select_option("recall")
    form.locator("button[type=submit]").click()
    expect(page.locator("#panel-deployments .messages")).to_contain_text("A/B experiment")
    ab_run = Deployment.objects.get(strategy="ab")
    assert (ab_run.shadow_share, ab_run.duration_seconds, ab_run.metric) == (0.3, 3600.0, "recall")
