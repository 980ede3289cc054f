"""The loop's two ways to collect a review's sign-offs (``demo.loop.Scenario.sign``).

By default (``make loop``) the loop signs for the personas through the service, printed
as "a person signs here"; with ``--signoffs external`` it says who signs which review
where and waits, within its timeout, for them to sign in the web UI (the browser test,
test_loop_browser.py, clicks those sign-offs on a real loop).
"""

from __future__ import annotations

import io

import pytest
from django.core.management.base import OutputWrapper

from demo.loop import LoopFailed, Scenario
from governance import reviews
from governance.models import Review, SignOff
from tests.governance.review_support import PASSWORD, high_risk_version, sign

pytestmark = pytest.mark.django_db


def submitted(personas):
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    return version


def signers(personas) -> dict:
    return {
        role: (getattr(personas, role), PASSWORD) for role in ("owner", "validator", "compliance")
    }


def test_by_default_the_loop_signs_for_the_three_personas_through_the_service(personas):
    version = submitted(personas)
    buffer = io.StringIO()
    out = OutputWrapper(buffer)  # as the command's stdout: a line per write
    scenario = Scenario(out=out)

    scenario.sign(reviews, signers(personas), version)

    assert Review.objects.get(version=version).state == "approved"
    assert sorted(SignOff.objects.values_list("signer__username", flat=True)) == [
        "compliance",
        "owner",
        "validator",
    ]
    text = buffer.getvalue()
    assert text.count(">>> A PERSON SIGNS HERE") == 3, text
    assert "SIGN IN THE WEB UI" not in text
    assert [s.label for s in scenario.steps] == [
        "Signed by owner",
        "Signed by validator",
        "Signed by compliance",
    ]
    assert all(s.hash for s in scenario.steps)


def test_with_external_signoffs_it_says_where_to_sign_signs_nothing_and_gives_up_in_time(
    personas, settings
):
    settings.SITE_URL = "http://loop.example:8010"
    version = submitted(personas)
    sign(personas.owner, version, meaning="reviewed")  # one persona has already signed
    buffer = io.StringIO()
    out = OutputWrapper(buffer)
    scenario = Scenario(out=out, signoffs="external", signoff_timeout=1.5)

    with pytest.raises(LoopFailed, match="timed out waiting for the sign-offs of v1"):
        scenario.sign(reviews, signers(personas), version)

    assert SignOff.objects.count() == 1
    assert Review.objects.get(version=version).state == "in_review"
    text = buffer.getvalue()
    assert "A PERSON SIGNS HERE" not in text
    asked = [line for line in text.splitlines() if ">>> SIGN IN THE WEB UI" in line]
    assert len(asked) == 2, text  # only the roles still missing
    assert "(validator) logs in as 'validator'" in asked[0]
    assert "(compliance) logs in as 'compliance'" in asked[1]
    assert all(
        "opens http://loop.example:8010/models/credit/versions/1/review/ and signs v1" in line
        for line in asked
    )
    assert "'approved_for_deployment'" in asked[1]
    # The sign-off given before the wait is on the timeline, with its audit event.
    assert [s.label for s in scenario.steps] == ["Signed by owner"]
    assert scenario.steps[0].hash


def test_with_external_signoffs_a_rejection_in_the_ui_stops_the_loop(personas):
    version = submitted(personas)
    sign(personas.owner, version, meaning="reviewed")
    sign(personas.validator, version, decision="reject", meaning="validated", comment="No.")
    scenario = Scenario(out=OutputWrapper(io.StringIO()), signoffs="external", signoff_timeout=30)

    with pytest.raises(LoopFailed, match="v1's review was rejected in the web UI"):
        scenario.sign(reviews, signers(personas), version)

    assert [s.label for s in scenario.steps] == ["Signed by owner", "Signed by validator"]
