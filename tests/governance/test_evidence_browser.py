"""Evidence on the version page in a real browser: charts drawn from plotly's
bundled JavaScript under the strict CSP, and a fairness audit started in-page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from governance.models import FairnessAudit
from governance.tasks import heavy_fairness_audit
from lifecycle import services as lifecycle_services
from lifecycle.tasks import heavy_evaluate
from tests.conftest import log_in, ready_version, shot
from tests.evidence_support import audit_frame, upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_contributor_audits_a_version_and_reads_the_charts(page, model, personas):
    version = ready_version(model, personas.bot)
    dataset = upload(model, personas.bot, audit_frame())
    job = lifecycle_services.evaluation_start(
        actor=personas.bot, version=version, dataset=dataset, target_column="label"
    )
    heavy_evaluate.run(job.pk)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    log_in(page, "pipeline-bot")
    page.goto("/models/credit/versions/1/")
    # Folded behind its summary, the chart is drawn when opened.
    page.click("#importance-details > summary")
    expect(page.locator("[data-chart='importance-chart'] .main-svg").first).to_be_visible()

    form = page.locator("#fairness-audit-form")
    form.locator("select[name=dataset]").select_option(str(dataset.pk))
    form.locator("input[name=target_column]").fill("label")
    form.locator("input[name=sensitive_features]").fill("sex, age_band")
    form.locator("button[type=submit]").click()
    expect(page.locator("#panel-fairness")).to_contain_text("Fairness audit queued")
    audit = FairnessAudit.objects.get()
    assert audit.sensitive_columns == ["sex", "age_band"] and audit.target_column == "label"

    heavy_fairness_audit.run(audit.pk)  # the worker's half; the panel polls until done
    expect(page.locator("#fairness-verdict")).to_contain_text("failed", timeout=20000)
    # Each attribute's chart and tables fold behind its verdict; the failed rules show.
    expect(page.locator("#panel-fairness ul.failed-rules li").first).to_be_visible()
    for summary in page.locator("#panel-fairness details.fairness-scope > summary").all():
        summary.click()
    charts = page.locator("#panel-fairness .chart .main-svg")
    expect(charts.first).to_be_visible()
    expect(page.locator("#panel-fairness .chart[data-drawn]")).to_have_count(3)
    assert page.locator("#panel-fairness .chart").count() == 3  # sex, age_band, intersection
    assert "75+" in page.locator("#panel-fairness table.fairness-groups").nth(1).inner_text()
    # The bot may register but not manage: no mitigation button for it.
    assert page.locator("text=Start mitigation").count() == 0
    shot(page, "evidence-version-page")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
