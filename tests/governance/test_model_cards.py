"""Model cards: generated from the registry and the evidence, narrative edited by
people with the change right, exported as Markdown, JSON and printable HTML."""

from __future__ import annotations

import pytest

from common.models import AuditEvent
from governance.models import ModelCard
from governance.tasks import heavy_fairness_audit
from tests.conftest import client_for, ready_version
from tests.evidence_support import audit_frame, upload

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit/versions/1/model-card"
NARRATIVE = {
    "intended_use": "Ranking loan applications for manual review.",
    "out_of_scope_use": "Automated rejection without a human in the loop.",
    "limitations": "Trained on synthetic applicants.",
    "ethical_considerations": "Income encodes historical bias against women.",
}


def test_the_generated_card_describes_version_data_and_fairness(model, personas):
    version = ready_version(model, personas.bot)
    dataset = upload(model, personas.bot, audit_frame())
    job = (
        client_for(personas.bot)
        .post(
            "/api/v1/models/credit/versions/1/fairness-audits/",
            {"dataset": dataset.pk, "target_column": "label", "sensitive_features": ["sex"]},
            format="json",
        )
        .json()
    )
    heavy_fairness_audit.run(job["id"])
    card = client_for(personas.viewer).get(URL).json()
    assert card["model"]["risk_tier"] == "high" and card["model"]["owner"] == "owner"
    assert card["version"]["artifact_sha256"] == version.artifact_sha256
    assert card["version"]["created_by"] == "pipeline-bot"
    assert [c["name"] for c in card["version"]["signature"]["inputs"]] == ["age", "income", "score"]
    assert card["fairness"]["status"] == "failed"
    assert card["fairness"]["sensitive_features"] == ["sex"]
    assert card["narrative_complete"] is False
    assert card["evaluation"] is None  # lifecycle's section: no evaluation yet


def test_editing_the_narrative_files_the_card_as_evidence(model, personas, filed):
    ready_version(model, personas.bot)
    owner = client_for(personas.owner)
    response = owner.patch(URL, {"intended_use": NARRATIVE["intended_use"]}, format="json")
    assert response.status_code == 200, response.json()
    [first] = filed
    assert first.kind == "model_card" and first.passed is False
    assert "out_of_scope_use" in first.summary
    response = owner.patch(URL, NARRATIVE, format="json")
    card = ModelCard.objects.get()
    assert response.json()["narrative_complete"] is True
    assert filed[-1].passed is True and filed[-1].sha256 == card.sha256
    assert first.sha256 != card.sha256  # another card, another digest
    assert AuditEvent.objects.filter(action="governance.model_card.updated").count() == 2


def test_a_new_version_starts_from_its_parents_narrative(model, personas):
    ready_version(model, personas.bot)
    client_for(personas.owner).patch(URL, NARRATIVE, format="json")
    ready_version(model, personas.bot, parent_number=1)
    card = client_for(personas.viewer).get(URL.replace("/1/", "/2/")).json()
    assert card["narrative"]["intended_use"] == NARRATIVE["intended_use"]
    assert ModelCard.objects.count() == 1  # inherited text is not a card of v2 until saved


def test_exports_in_markdown_and_printable_html(model, personas):
    ready_version(model, personas.bot)
    client_for(personas.owner).patch(URL, NARRATIVE, format="json")
    viewer = client_for(personas.viewer)
    md = viewer.get(URL, {"format": "md"})
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    text = md.content.decode()
    assert text.startswith("# Model card: credit v1")
    assert "## Intended use\n\nRanking loan applications" in text
    assert "attachment" in md["Content-Disposition"]
    html = viewer.get(URL, {"format": "html"})
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert "<h2>Ethical considerations</h2><p>Income encodes" in html.content.decode()
    assert viewer.get(URL, {"format": "pdf"}).status_code == 404


def test_model_card_permissions_and_bad_input(model, personas):
    ready_version(model, personas.bot)
    assert client_for(None).get(URL).status_code == 401
    assert client_for(personas.outsider).get(URL).status_code == 404
    assert client_for(personas.viewer).patch(URL, NARRATIVE, format="json").status_code == 403
    owner = client_for(personas.owner)
    bad = owner.patch(URL, {"intended_use": "x", "secret_field": "y"}, format="json")
    assert bad.status_code == 400 and "secret_field" in bad.json()["error"]["details"]
    assert owner.patch(URL, {"limitations": "x" * 20_001}, format="json").status_code == 400
    assert owner.patch(URL, {}, format="json").status_code == 400
    assert not ModelCard.objects.exists()


def test_the_ui_edits_and_exports_the_card(model, personas, client):
    ready_version(model, personas.bot)
    client.force_login(personas.owner)
    edit = "/models/credit/versions/1/model-card/edit/"
    assert client.get(edit).status_code == 200
    response = client.post(edit, NARRATIVE)
    assert response.status_code == 302
    page = client.get("/models/credit/versions/1/").content.decode()
    assert "Ranking loan applications" in page and "complete" in page
    export = client.get("/models/credit/versions/1/model-card/?format=md")
    assert export.content.decode().startswith("# Model card: credit v1")
    client.force_login(personas.viewer)
    assert client.get(edit).status_code == 403
    assert "Edit narrative" not in client.get("/models/credit/versions/1/").content.decode()


def test_a_viewer_opening_the_card_editor_gets_the_one_error_shape(model, personas, client):
    ready_version(model, personas.bot)
    client.force_login(personas.viewer)  # may see the model, not change it
    edit = "/models/credit/versions/1/model-card/edit/"
    for response in (client.get(edit), client.post(edit, NARRATIVE)):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert response.json()["error"]["details"] == {"action": "change"}
    assert not ModelCard.objects.exists()
