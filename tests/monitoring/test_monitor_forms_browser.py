"""Monitors created and edited from the dashboard in a real browser, then an alert
acknowledged there; a viewer sees none of these buttons."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from monitoring.models import Alert, Monitor
from tests.conftest import log_in, shot
from tests.monitoring.test_dashboard import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_owner_creates_then_edits_a_monitor(page: Any, monitored: Any, personas: Any) -> None:
    log_in(page, "owner")
    page.goto("/monitoring/models/credit/")
    expect(page.locator("#monitors")).to_contain_text("No monitor yet")
    page.click("#monitor-new")
    form = page.locator("#monitor-form")
    form.locator("input[name=name]").fill("hourly")
    form.locator("select[name=version]").select_option("1")
    form.locator("input[name=checks][value=label_drift]").uncheck()
    form.locator("input[name=window_hours]").fill("6")
    form.locator("input[name=min_rows]").fill("20")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/monitoring/models/credit/?monitor=*")
    expect(page.locator(".messages")).to_contain_text("Monitor hourly created")
    expect(page.locator("#monitors tbody")).to_contain_text("6 h")
    monitor = Monitor.objects.get()
    assert monitor.checks == ["drift", "prediction_drift", "performance"]
    assert monitor.min_rows == 20 and monitor.created_by == personas.owner

    page.locator("#monitors a.monitor-edit").click()
    expect(form.locator("input[name=name]")).to_have_value("hourly")
    form.locator("input[name=window_hours]").fill("12")
    form.locator("textarea[name=thresholds]").fill('{"drift_share": 0.5}')
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/monitoring/models/credit/?monitor=*")
    expect(page.locator("#monitors tbody")).to_contain_text("12 h")
    expect(page.locator("#monitors tbody")).to_contain_text("drift_share=0.5")
    monitor.refresh_from_db()
    assert monitor.window_hours == 12 and monitor.thresholds["drift_share"] == 0.5
    assert monitor.thresholds["psi"] == 0.1  # the others kept

    page.locator("#monitors a.monitor-edit").click()
    form.locator("input[name=window_hours]").fill("3")
    form.locator("textarea[name=thresholds]").fill('{"nonsense": 1}')
    form.locator("button[type=submit]").click()
    expect(form.locator("[role=alert]")).to_contain_text("Unknown threshold 'nonsense'.")
    assert Monitor.objects.get().window_hours == 12  # nothing changed
    shot(page, "monitor-edit-refused")


def test_the_owner_acknowledges_an_alert_a_viewer_has_no_buttons(
    page: Any, monitored: Any, personas: Any
) -> None:
    populate(monitored, personas)
    log_in(page, "viewer")
    page.goto("/monitoring/models/credit/")
    expect(page.locator("#alerts tbody tr[id^='alert-']").first).to_be_visible()
    for absent in ("#monitor-new", "a.monitor-edit", "#alerts button"):
        expect(page.locator(absent)).to_have_count(0)
    page.context.clear_cookies()
    log_in(page, "owner")
    page.goto("/monitoring/models/credit/")
    row = page.locator("#alerts tbody tr[id^='alert-']").first
    row.locator("button:text('Acknowledge')").click()
    expect(page.locator("#alerts")).to_contain_text("by owner")
    assert Alert.objects.filter(status="acknowledged", acknowledged_by=personas.owner).exists()
