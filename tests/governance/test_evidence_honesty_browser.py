"""What a reviewer sees of failed evidence in a real browser: a failed audit in red with
its rules and a link, the approval refused over it, the override form and its record,
what blocks deployment, and the version page's evidence summary."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from governance import reviews
from governance.models import Review, SignOff
from tests.conftest import log_in, shot
from tests.governance.review_support import (
    PASSWORD,
    allow_override,
    failing_version,
    file_evidence,
    sign,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
REVIEW = "/models/credit/versions/1/review/"
RED = "rgb(179, 38, 30)"  # --bad


def fill_signature(page, *, meaning: str, comment: str, justification: str | None = None):
    form = page.locator("#signoff-form")
    form.locator("select[name=decision]").select_option("approve")
    form.locator("select[name=meaning]").select_option(meaning)
    form.locator("textarea[name=comment]").fill(comment)
    if justification is not None:
        form.locator("textarea[name=override_justification]").fill(justification)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()


def test_a_failed_audit_is_red_with_its_rules_and_approval_over_it_is_refused(page, personas):
    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)

    log_in(page, "owner")
    page.goto(REVIEW)
    row = page.locator("table.checklist tr[data-requirement='evidence:fairness_audit']")
    expect(row).to_have_class("status-failed")
    badge = row.locator(".badge")
    expect(badge).to_have_text("failed")
    assert badge.evaluate("e => getComputedStyle(e).color") == RED
    expect(row.locator("ul.rules")).to_contain_text(
        "demographic_parity_ratio on sex: 0.6123 (threshold 0.8)"
    )
    expect(row.locator("a")).to_have_attribute("href", "/models/credit/versions/1/#panel-fairness")
    card = page.locator("table.checklist tr[data-requirement='evidence:model_card'] .badge")
    expect(card).to_have_text("missing")
    assert card.evaluate("e => getComputedStyle(e).color") != RED

    # What blocks deployment, in the words of the deploy refusal.
    expect(page.locator("#deploy-blockers")).to_contain_text(
        "Failed: fairness audit. Missing: model card. Sign-offs still needed: model owner, "
        "independent validator, compliance officer."
    )
    # The form says before signing that an approval for deployment would be refused...
    expect(page.locator("#approval-block")).to_contain_text("allows no override")
    # ...and signing it anyway is refused with that reason; nothing is signed.
    fill_signature(page, meaning="approved_for_deployment", comment="ship it")
    expect(page.locator("#review-errors")).to_contain_text(
        "required evidence is not met (fairness audit failed; model card missing)"
    )
    assert not SignOff.objects.exists()
    shot(page, "evidence-honesty-refused")


def test_the_override_role_approves_with_a_written_justification_that_is_shown(page, personas):
    allow_override("compliance")
    version = failing_version(personas)
    file_evidence(version, "model_card")
    reviews.review_submit(actor=personas.owner, version=version)
    sign(personas.owner, version, meaning="reviewed")
    sign(personas.validator, version, meaning="validated")

    log_in(page, "compliance")
    page.goto(REVIEW)
    field = page.locator("textarea[name=override_justification]")
    expect(field).to_be_visible()
    expect(page.locator("label[for=id_override_justification]")).to_contain_text(
        "Override evidence:fairness_audit"
    )
    # Without a justification: refused, the field marked.
    fill_signature(page, meaning="approved_for_deployment", comment="ok", justification="")
    expect(page.locator("#review-errors")).to_contain_text("written justification")
    assert not SignOff.objects.filter(role="compliance").exists()

    why = "Gap explained by the 2019 portfolio mix; remediation plan R-12, re-audit in 90 days."
    fill_signature(
        page,
        meaning="approved_for_deployment",
        comment="Approved as an exception",
        justification=why,
    )
    expect(page.locator("#review-state")).to_contain_text("Approved")
    row = page.locator("table.checklist tr[data-requirement='evidence:fairness_audit']")
    expect(row.locator(".badge")).to_have_text("overridden")
    expect(row).to_contain_text(why)
    expect(page.locator("#signoffs .override")).to_contain_text(
        "evidence:fairness_audit (failed): " + why
    )
    expect(page.locator("#deploy-blockers")).to_have_count(0)
    signoff = SignOff.objects.get(role="compliance")
    assert signoff.override_justification == why
    assert Review.objects.get().state == "approved"
    shot(page, "evidence-honesty-override")


def test_the_version_page_opens_with_every_gate_on_one_screen(page, personas):
    version = failing_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)

    log_in(page, "owner")
    page.goto("/models/credit/versions/1/")
    summary = page.locator("#panel-evidence-summary")
    expect(summary).to_be_visible()
    # It opens the evidence: the first panel of the page, within the first screen.
    assert page.locator("section.card[id^=panel-]").first.get_attribute("id") == (
        "panel-evidence-summary"
    )
    box = summary.bounding_box()
    assert box is not None and box["height"] < 900
    expect(summary.locator("#gate-evaluation_report")).to_have_attribute("data-status", "passed")
    audit = summary.locator("#gate-fairness_audit")
    expect(audit).to_have_attribute("data-status", "failed")
    expect(audit.locator(".badge")).to_have_text("failed")
    expect(audit.locator(".figures")).to_contain_text("demographic_parity_ratio on sex: 0.6123")
    expect(summary.locator("#gate-model_card")).to_have_attribute("data-status", "missing")
    expect(summary.locator("#gate-review")).to_contain_text("0 of 3 sign-offs")
    expect(summary.locator("#gate-sensitive_inputs")).to_have_attribute("data-status", "passed")
    expect(summary.locator("#evidence-counts")).to_contain_text("1 failed")
    audit.locator("h3 a").click()
    expect(page).to_have_url(re.compile(r"/models/credit/versions/1/#panel-fairness$"))
    shot(page, "evidence-summary")
