"""Registry actions from the pages, on the API's services: moving an alias from the model
page, failed uploads shown apart, and the warning when an artifact is uploaded again."""

from __future__ import annotations

import pickle

import pytest
from django.test import Client
from sklearn.linear_model import LogisticRegression

from registry import services
from registry.models import Alias, ModelVersion
from tests.conftest import classifier_bytes, client_for, grant, ready_version, register, validate
from tests.registry.test_api import post_version

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def move(client: Client, alias: str, version: int):
    return client.post("/models/credit/aliases/", {"alias": alias, "version": version})


class TestMovingAnAliasFromTheModelPage:
    def test_a_contributor_moves_a_plain_alias_and_the_audit_names_them(self, model, personas):
        v1 = ready_version(model, personas.bot)
        v2 = ready_version(model, personas.bot, artifact=classifier_bytes(seed=1))
        services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
        client = logged_in(personas.bot)
        response = move(client, "staging", 2)
        assert response.status_code == 302 and response["Location"].endswith("#aliases")
        alias = Alias.objects.get(name="staging")
        assert alias.version == v2 and alias.updated_by == personas.bot and not alias.protected
        page = client.get("/models/credit/").content.decode()
        assert "credit@staging now points at v2." in page
        assert v1.pk != v2.pk

    def test_a_protected_alias_is_refused_with_the_apis_own_message(
        self, model, personas, settings
    ):
        ready_version(model, personas.bot)
        api = client_for(personas.owner).put(
            "/api/v1/models/credit/aliases/production", {"version": 1}, format="json"
        )
        assert api.status_code >= 400
        message = api.json()["error"]["message"]
        client = logged_in(personas.owner)
        response = move(client, "production", 1)
        assert response.status_code == 302
        page = client.get(response["Location"]).content.decode()
        assert message.replace("'", "&#x27;") in page
        assert not Alias.objects.filter(name="production").exists()

    def test_a_viewer_sees_no_form_and_is_refused_with_403_an_outsider_404(self, model, personas):
        ready_version(model, personas.bot)
        page = logged_in(personas.viewer).get("/models/credit/").content.decode()
        assert 'id="alias-move"' not in page
        refused = move(logged_in(personas.viewer), "staging", 1)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "permission_denied"
        assert move(logged_in(personas.outsider), "staging", 1).status_code == 404
        assert not Alias.objects.exists()
        owner_page = logged_in(personas.owner).get("/models/credit/").content.decode()
        assert 'id="alias-move"' in owner_page

    def test_the_form_needs_its_csrf_token(self, model, personas):
        ready_version(model, personas.bot)
        client = Client(enforce_csrf_checks=True)
        client.force_login(personas.bot)
        assert move(client, "staging", 1).status_code == 403
        assert not Alias.objects.exists()

    def test_a_version_that_is_not_ready_is_refused_with_the_services_reason(self, model, personas):
        register(model, personas.bot)  # pending
        client = logged_in(personas.bot)
        response = move(client, "staging", 1)
        page = client.get(response["Location"]).content.decode()
        assert "Version 1 is pending; only a ready version can be aliased." in page


def failed_upload(model, actor) -> ModelVersion:
    version = validate(register(model, actor, artifact=pickle.dumps(LogisticRegression())))
    assert version.status == "failed"
    return version


class TestFailedUploads:
    def test_failed_versions_are_listed_apart_and_collapsed_on_the_model_page(
        self, model, personas
    ):
        ready_version(model, personas.bot)
        failed_upload(model, personas.bot)
        ready_version(model, personas.bot, artifact=classifier_bytes(seed=1))
        html = logged_in(personas.owner).get("/models/credit/").content.decode()
        versions, failed = html.split('id="failed-versions"')
        assert "1 failed upload (kept: numbers are never reused)" in failed
        assert "/models/credit/versions/2/" in failed and "pickle" in failed
        main_table = versions.split('id="versions"')[1]
        assert "/models/credit/versions/2/" not in main_table
        assert "/models/credit/versions/1/" in main_table
        assert "/models/credit/versions/3/" in main_table
        assert "<details" in html.split('id="failed-versions"')[0][-40:]  # collapsed

    def test_no_failed_section_without_failed_versions(self, model, personas):
        ready_version(model, personas.bot)
        html = logged_in(personas.owner).get("/models/credit/").content.decode()
        assert "failed-versions" not in html


class TestSameArtifactAgain:
    def test_the_registration_answer_warns_when_the_file_is_byte_identical(self, model, personas):
        client = client_for(personas.bot)
        first = post_version(client)
        assert first.status_code == 202 and first.json()["warnings"] == []
        again = post_version(client)
        assert again.status_code == 202
        (warning,) = again.json()["warnings"]
        assert warning["code"] == "duplicate_artifact"
        assert warning["details"]["versions"] == [1]
        assert warning["details"]["sha256"] == again.json()["artifact"]["sha256"]
        assert "byte-identical to v1 (pending)" in warning["message"]
        other = post_version(client, data=classifier_bytes(seed=1))
        assert other.json()["warnings"] == []

    def test_the_version_page_warns_and_links_the_earlier_version(self, model, personas):
        ready_version(model, personas.bot)
        failed_upload(model, personas.bot)
        failed_upload(model, personas.bot)
        ready_version(model, personas.bot)
        client = logged_in(personas.owner)
        html = client.get("/models/credit/versions/4/").content.decode()
        assert 'id="version-warning-duplicate_artifact"' in html
        assert "byte-identical to v1 (ready)" in html
        assert 'href="/models/credit/versions/1/"' in html
        assert (
            "byte-identical to v2 (failed)"
            in client.get("/models/credit/versions/3/").content.decode()
        )
        assert "version-warning" not in client.get("/models/credit/versions/1/").content.decode()

    def test_the_same_file_under_another_model_is_no_duplicate(self, model, personas):
        from tests.conftest import create_model

        ready_version(model, personas.bot)
        other = create_model(personas.owner, name="other")
        grant(other, personas.bot, "contributor")
        response = post_version(client_for(personas.bot), model="other")
        assert response.json()["warnings"] == []
