"""Lifecycle actions in a real browser, from the version page: an evaluation requested on
a chosen dataset, and a fairness mitigation started from the failed audit."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lifecycle.models import Evaluation
from lifecycle.tasks import heavy_evaluate
from tests.conftest import log_in, ready_version, shot
from tests.lifecycle.test_version_actions import holdout, make_failed_audit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def failed_audit(model, personas):
    return make_failed_audit(model, personas)


def test_a_contributor_requests_an_evaluation_and_reads_it(page, model, personas):
    ready_version(model, personas.bot)
    holdout(model, personas.bot, name="other")
    chosen = holdout(model, personas.bot)
    log_in(page, "pipeline-bot")
    page.goto("/models/credit/versions/1/")
    form = page.locator("#evaluation-request form")
    expect(form).to_be_visible()  # open: no evaluation yet
    form.locator("select[name=dataset]").select_option(str(chosen.pk))
    form.locator("input[name=target_column]").fill("label")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/models/credit/versions/1/#panel-evaluation")
    expect(page.locator(".messages")).to_contain_text("queued")
    expect(page.locator("#evaluations-pending")).to_contain_text("holdout")
    job = Evaluation.objects.get()
    assert job.dataset == chosen and job.requested_by == personas.bot
    heavy_evaluate.run(job.pk)  # the worker's half; the panel polls until it is done
    expect(page.locator("#evaluation-metrics")).to_contain_text("accuracy", timeout=20000)
    expect(page.locator("#evaluations-pending")).to_have_count(0)
    shot(page, "evaluation-requested")


def test_a_viewer_sees_neither_the_evaluation_nor_the_mitigation_button(
    page, model, personas, failed_audit
):
    log_in(page, "viewer")
    page.goto("/models/credit/versions/1/")
    expect(page.locator("#panel-mitigation")).to_contain_text("failed")
    expect(page.locator("#mitigation-form")).to_have_count(0)
    expect(page.locator("#evaluation-request")).to_have_count(0)
