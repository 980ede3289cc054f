"""A version that starts from its parent's narrative counts as having a card: the review
checklist, the evidence list and the signatures see it without the owner saving it again
(the rule lives in ``governance.selectors.latest_evidence`` / ``model_card_source``)."""

from __future__ import annotations

import pytest
from django.test import Client

from governance import model_cards, reviews, selectors
from governance.models import ModelCard
from tests.conftest import ready_version
from tests.governance.review_support import file_evidence, high_risk_version, sign

pytestmark = pytest.mark.django_db
NARRATIVE = {
    "intended_use": "Ranking loan applications for manual review.",
    "out_of_scope_use": "Automated rejection without a human in the loop.",
    "limitations": "Trained on synthetic applicants.",
    "ethical_considerations": "Income encodes historical bias against women.",
}


def card_item(review) -> dict:
    return next(
        i
        for i in selectors.review_checklist(review=review)
        if i["requirement"] == "evidence:model_card"
    )


def child_in_review(personas, narrative: dict[str, str]):
    parent = high_risk_version(personas)
    model_cards.model_card_update(actor=personas.owner, version=parent, fields=narrative)
    child = ready_version(parent.registered_model, personas.bot, parent_number=parent.number)
    file_evidence(child, "evaluation_report")
    file_evidence(child, "fairness_audit")
    return parent, child, reviews.review_submit(actor=personas.bot, version=child)


def test_a_child_of_a_carded_version_meets_the_model_card_item_without_saving(personas):
    _parent, child, review = child_in_review(personas, NARRATIVE)
    item = card_item(review)
    assert item["met"] is True, item
    assert item["why"] == "complete (narrative inherited from v1)"
    expected = model_cards.card_build(child)
    expected.pop("narrative_updated_at")
    assert item["sha256"] == model_cards.card_digest(expected)
    assert not ModelCard.objects.filter(version=child).exists()  # nothing was written


def test_an_incomplete_inherited_narrative_is_failed_evidence_naming_the_empty_fields(personas):
    _parent, _child, review = child_in_review(personas, {**NARRATIVE, "limitations": ""})
    item = card_item(review)
    assert item["met"] is False
    assert "incomplete (narrative inherited from v1): limitations empty" in item["why"]


def test_a_version_without_a_carded_ancestor_still_has_no_card(personas):
    version = high_risk_version(personas, evidence=False)
    file_evidence(version, "evaluation_report")
    review = reviews.review_submit(actor=personas.bot, version=version)
    item = card_item(review)
    assert {k: item[k] for k in ("requirement", "met", "why", "sha256", "status")} == {
        "requirement": "evidence:model_card",
        "met": False,
        "why": "No model card filed.",
        "sha256": None,
        "status": "missing",
    }


def test_the_narrative_is_inherited_through_a_parent_that_never_saved_one(personas):
    grandparent = high_risk_version(personas)
    model_cards.model_card_update(actor=personas.owner, version=grandparent, fields=NARRATIVE)
    model = grandparent.registered_model
    parent = ready_version(model, personas.bot, parent_number=1)
    child = ready_version(model, personas.bot, parent_number=parent.number)
    _card, narrative = model_cards.narrative_of(child)
    assert narrative["intended_use"] == NARRATIVE["intended_use"]
    latest = selectors.latest_evidence(version=child)["model_card"]
    assert latest.passed is True and latest.details["inherited_from"] == 1


def test_the_childs_own_card_replaces_the_inherited_one(personas):
    _parent, child, review = child_in_review(personas, NARRATIVE)
    card = model_cards.model_card_update(
        actor=personas.owner, version=child, fields={"caveats": "Only for the pilot."}
    )
    item = card_item(review)
    assert item["met"] is True and item["sha256"] == card.sha256
    assert item["why"] == "complete"


def test_a_signature_records_the_inherited_cards_digest(personas):
    _parent, child, review = child_in_review(personas, NARRATIVE)
    signoff = sign(personas.validator, child, role="validator", meaning="validated")
    assert signoff.evidence_sha256["model_card"] == card_item(review)["sha256"]


def test_the_version_page_says_the_card_counts(personas):
    _parent, child, _review = child_in_review(personas, NARRATIVE)
    client = Client()
    client.force_login(personas.owner)
    html = client.get(f"/models/credit/versions/{child.number}/").content.decode()
    assert 'id="model-card-inherited"' in html
    assert "it counts as this version's card until someone edits it here" in html
    review_html = client.get(f"/models/credit/versions/{child.number}/review/").content.decode()
    assert "No model card filed" not in review_html
    assert "narrative inherited from v1" in review_html
