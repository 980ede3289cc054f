"""Registry pages: login, list with filters, model page, version page, visibility."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import create_model, ready_version, register, validate

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login(model):
    response = Client().get("/models/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_form_works(personas):
    client = Client()
    response = client.post("/login/", {"username": "owner", "password": "correct-horse-9"})
    assert response.status_code == 302
    assert "My models" in client.get("/").content.decode()


def test_the_models_list_filters_by_tier_task_tag_and_text(personas):
    create_model(personas.owner, name="alpha", risk_tier="high", tags=["retail"])
    create_model(personas.owner, name="beta", risk_tier="low", task="regression")
    client = logged_in(personas.owner)

    def shown(query: str) -> set[str]:
        html = client.get(f"/models/?{query}").content.decode()
        return {name for name in ("alpha", "beta") if f">{name}</a>" in html}

    assert shown("") == {"alpha", "beta"}
    assert shown("risk_tier=high") == {"alpha"}
    assert shown("task=regression") == {"beta"}
    assert shown("tag=retail") == {"alpha"}
    assert shown("q=bet") == {"beta"}


def test_an_htmx_request_gets_only_the_table(personas):
    create_model(personas.owner, name="alpha")
    response = logged_in(personas.owner).get("/models/?q=al", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<table>" in html and "<html" not in html


def test_the_model_page_shows_versions_and_aliases(model, personas):
    from registry import services

    ready_version(model, personas.bot)
    validate(register(model, personas.bot, artifact=b"nope"))
    services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
    html = logged_in(personas.viewer).get("/models/credit/").content.decode()
    assert "credit@staging" in html
    assert ">v1</a>" in html and ">v2</a>" in html
    assert "Failed" in html


def test_the_version_page_shows_metadata_signature_metrics_and_lineage(model, personas):
    ready_version(model, personas.bot, metrics={"accuracy": 0.875})
    version = ready_version(model, personas.bot, parent_number=1)
    html = logged_in(personas.viewer).get("/models/credit/versions/2/").content.decode()
    assert version.artifact_sha256 in html
    assert "LogisticRegression" in html
    assert ">age</td>" in html and "float64" in html
    assert 'classes 0, 1 (positive class <span class="mono">1</span>)' in html
    assert 'href="/models/credit/versions/1/">v1</a>' in html
    assert "max_iter" in html


def test_a_failed_version_shows_its_reason(model, personas):
    validate(register(model, personas.bot, artifact=b"\x80\x04bad"))
    html = logged_in(personas.viewer).get("/models/credit/versions/1/").content.decode()
    assert "Registration failed" in html and "pickle" in html


def test_an_outsider_gets_404_on_pages_and_sees_no_models(model, personas):
    ready_version(model, personas.bot)
    client = logged_in(personas.outsider)
    assert client.get("/models/credit/").status_code == 404
    assert client.get("/models/credit/versions/1/").status_code == 404
    assert "credit" not in client.get("/models/").content.decode()


def test_the_auditor_reads_the_admin_but_cannot_change_anything(model, personas):
    ready_version(model, personas.bot)
    client = logged_in(personas.auditor)
    assert client.get("/admin/registry/registeredmodel/").status_code == 200
    page = client.get(f"/admin/registry/registeredmodel/{model.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get("/admin/registry/registeredmodel/add/").status_code == 403
    assert client.get(f"/admin/registry/registeredmodel/{model.pk}/delete/").status_code == 403
    assert client.get("/admin/common/auditevent/").status_code == 200
    response = client.post(f"/admin/registry/registeredmodel/{model.pk}/change/", {"name": "x"})
    assert response.status_code == 403


def test_swagger_ui_and_schema_are_served_without_a_cdn(personas):
    client = logged_in(personas.owner)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/models/{model_name}/aliases/{alias}:" in schema.content
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_pages_carry_a_strict_content_security_policy(personas):
    response = logged_in(personas.owner).get("/models/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
    assert "default-src 'self'" in policy
