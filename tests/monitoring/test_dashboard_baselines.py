"""The dashboard in a real browser: the baseline a check judged against, the version it
judged, the cumulative view of a feature, and htmx polling that stops when a check ends."""

from __future__ import annotations

from typing import Any

import pytest

from common.jobs import job_claim
from monitoring import services
from monitoring.checks import check_run_execute
from monitoring.models import CheckRun
from registry import services as registry_services
from tests.conftest import log_in, shot
from tests.monitoring.test_baselines import end_of, post_day


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_draws_the_baseline_the_version_judged_and_stops_polling(
    page: Any, monitored: Any, personas: Any, without_alias_gates: Any
) -> None:
    from playwright.sync_api import expect

    model = monitored.registered_model
    registry_services.alias_set(
        actor=personas.owner, model=model, name="production", version_number=1
    )
    monitor = services.monitor_create(
        actor=personas.owner,
        model=model,
        alias="production",
        name="prod",
        checks=["drift", "performance"],
        baseline="trailing",
        baseline_days=2,
        min_rows=50,
    )
    for day in range(4):
        post_day(monitored, personas, day, separation=1.05 if day < 3 else 0.48)
        run, _ = services.check_run_request(
            actor=personas.owner, monitor=monitor, window_end=end_of(day)
        )
        check_run_execute(job=job_claim(CheckRun, run.pk))
    post_day(monitored, personas, 4, separation=0.48)
    queued, _ = services.check_run_request(
        actor=personas.owner, monitor=monitor, window_end=end_of(4)
    )

    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/status/" in r.url else None)
    log_in(page, "owner")
    page.goto("/monitoring/models/credit/?feature=income")
    expect(page.locator("#check-status")).to_contain_text(f"Check #{queued.pk}")
    expect(page.locator("#monitors")).to_contain_text("follows @production")
    expect(page.locator("#monitors .monitor-baseline")).to_contain_text("Trailing window (2 d)")
    expect(page.locator("#baseline-judged")).to_contain_text("v1")
    expect(page.locator("#baseline-judged")).to_contain_text("trailing 2 d of v1")
    expect(page.locator("#runs .run-version").first).to_have_text("v1")
    # The metric chart draws each metric's baseline beside it.
    metric = page.locator("[data-chart='metric-chart']")
    expect(metric.locator(".main-svg").first).to_be_visible()
    expect(metric.locator(".legend")).to_contain_text("roc_auc baseline")
    # The income histogram with readable bins, and its cumulative view beside it.
    for chart in ("feature-chart", "feature-cdf-chart"):
        expect(page.locator(f"[data-chart='{chart}'] .main-svg").first).to_be_visible()
    expect(page.locator("[data-chart='feature-cdf-chart']")).to_contain_text("cumulative share")
    ticks = page.locator("[data-chart='feature-chart'] .xtick text").all_text_contents()
    assert ticks and not [t for t in ticks if "e+" in t or "e-" in t], ticks
    assert any(" to " in t for t in ticks), ticks
    cdf_ticks = page.locator("[data-chart='feature-cdf-chart'] .xtick text").all_text_contents()
    assert cdf_ticks and not [t for t in cdf_ticks if "e+" in t], cdf_ticks
    expect(page.locator("#feature-table")).to_contain_text("(KS)")
    shot(page, "monitoring-dashboard-baseline")

    # The page polls while the check is queued ...
    page.wait_for_timeout(2500)
    assert polls, "the dashboard did not poll while a check was queued"
    check_run_execute(job=job_claim(CheckRun, queued.pk))
    # ... reloads itself when it is done, and then polls no more.
    expect(page.locator("#check-status")).to_have_attribute("data-idle", "1", timeout=15_000)
    expect(page.locator("#runs tbody tr").first).to_contain_text(str(queued.pk))
    seen = len(polls)
    page.wait_for_timeout(5000)
    assert len(polls) == seen
    expect(page.locator("#runs tbody tr").first.locator(".badge.bad")).to_contain_text(
        "performance"
    )
