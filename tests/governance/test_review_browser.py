"""A high-risk review by three personas in a real browser: submit, sign, a wrong password, approve."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from governance.models import Review, SignOff
from tests.conftest import log_in, shot
from tests.governance.review_support import PASSWORD, high_risk_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
REVIEW = "/models/credit/versions/1/review/"


def log_out(page) -> None:
    page.context.clear_cookies()


def sign_in_page(page, *, meaning: str, comment: str, password: str = PASSWORD) -> None:
    form = page.locator("#signoff-form")
    form.locator("select[name=decision]").select_option("approve")
    form.locator("select[name=meaning]").select_option(meaning)
    form.locator("textarea[name=comment]").fill(comment)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()


def test_three_personas_review_a_high_risk_version_in_the_browser(page, personas):
    high_risk_version(personas)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    # The owner submits from the version page's review panel (htmx, in page).
    log_in(page, "owner")
    page.goto("/models/credit/versions/1/")
    expect(page.locator("#panel-review")).to_contain_text("Draft")
    page.click("#submit-review")
    expect(page.locator("#review-state")).to_contain_text("In review")
    expect(page.locator("#panel-review")).to_contain_text("No valid sign-off by the model owner")
    shot(page, "review-1-submitted")

    # A wrong password signs nothing and says why.
    page.goto(REVIEW)
    sign_in_page(page, meaning="reviewed", comment="ok", password="wrong")
    expect(page.locator("#review-errors")).to_contain_text("password is wrong")
    assert not SignOff.objects.exists()
    sign_in_page(page, meaning="reviewed", comment="Business case confirmed")
    expect(page.locator("#signoffs")).to_contain_text("Business case confirmed")
    expect(page.locator("#signoff-form")).to_have_count(0)  # no second role for the owner
    log_out(page)

    # The validator finds it on the home page, waiting for their sign-off.
    log_in(page, "validator")
    expect(page.locator("#section-waiting")).to_contain_text("credit v1")
    page.locator("#section-waiting a", has_text="credit v1").click()
    expect(page.locator("h1")).to_contain_text("Review of credit v1")
    sign_in_page(page, meaning="validated", comment="Back-test reproduced")
    expect(page.locator("#signoffs")).to_contain_text("Back-test reproduced")
    shot(page, "review-2-validated")
    log_out(page)

    # The compliance officer completes it: approved.
    log_in(page, "compliance")
    page.goto(REVIEW)
    expect(page.locator("table.checklist")).to_contain_text("missing")
    sign_in_page(page, meaning="approved_for_deployment", comment="Fair lending reviewed")
    expect(page.locator("#review-state")).to_contain_text("Approved")
    expect(page.locator("table.checklist tr.status-missing")).to_have_count(0)
    shot(page, "review-3-approved")
    log_out(page)

    # The outsider sees nothing; the viewer-less bot sees no sign-off form.
    log_in(page, "pipeline-bot")
    page.goto(REVIEW)
    expect(page.locator("#review-state")).to_contain_text("Approved")
    expect(page.locator("#signoff-form")).to_have_count(0)
    expect(page.locator("#submit-review")).to_have_count(0)

    review = Review.objects.get()
    assert review.state == "approved"
    assert sorted(SignOff.objects.values_list("role", flat=True)) == [
        "compliance",
        "owner",
        "validator",
    ]
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_a_refused_submission_shows_its_reason_in_the_panel(page, personas):
    from governance.models import ApprovalPolicy

    high_risk_version(personas)
    ApprovalPolicy.objects.filter(risk_tier="high").delete()
    log_in(page, "owner")
    page.goto("/models/credit/versions/1/")
    page.click("#submit-review")
    expect(page.locator("#review-errors")).to_contain_text("No approval policy")
    assert not Review.objects.exists()
