"""The pipeline REST API: contract paths, error shape, bad input, permissions."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import AuthToken

from common.models import AuditEvent
from registry.models import Dataset, ModelVersion, RegisteredModel
from tests.conftest import (
    SIGNATURE,
    classifier_bytes,
    client_for,
    csv_bytes,
    grant,
    parquet_bytes,
    ready_version,
    training_frame,
    validate,
)

pytestmark = pytest.mark.django_db


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def artifact_file(data: bytes | None = None, name: str = "model.skops") -> io.BytesIO:
    handle = io.BytesIO(data if data is not None else classifier_bytes())
    handle.name = name
    return handle


def post_version(client, model="credit", metadata=None, data=None, name="model.skops"):
    payload = {"artifact": artifact_file(data, name)}
    if metadata is not None:
        payload["metadata"] = metadata if isinstance(metadata, str) else json.dumps(metadata)
    return client.post(f"/api/v1/models/{model}/versions/", payload, format="multipart")


class TestTokens:
    def test_a_password_buys_an_expiring_token_whose_hash_alone_is_stored(self, personas, api):
        response = api.post(
            "/api/v1/auth/token/",
            {"username": "pipeline-bot", "password": "correct-horse-9"},
            format="json",
        )
        assert response.status_code == 200
        token = response.json()["token"]
        assert response.json()["expiry"]
        stored = AuthToken.objects.get(user=personas.bot)
        assert token not in stored.digest and stored.digest != token
        assert stored.expiry > timezone.now() + timedelta(hours=9)
        authed = client_for(None)
        authed.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert authed.get("/api/v1/models/").status_code == 200
        assert AuditEvent.objects.filter(action="auth.token.issued").count() == 1

    def test_a_wrong_password_is_a_clear_400(self, personas, api):
        response = api.post(
            "/api/v1/auth/token/", {"username": "pipeline-bot", "password": "nope"}, format="json"
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "invalid_credentials"

    def test_an_expired_or_bogus_token_is_refused(self, personas):
        _instance, token = AuthToken.objects.create(user=personas.bot, expiry=timedelta(seconds=-1))
        client = client_for(None)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.get("/api/v1/models/")
        assert response.status_code == 401
        assert error_of(response)["code"] == "authentication_failed"
        client.credentials(HTTP_AUTHORIZATION="Token " + "x" * 64)
        assert client.get("/api/v1/models/").status_code == 401

    def test_issue_token_prints_a_working_token(self, personas):
        from django.core.management import call_command

        out = io.StringIO()
        call_command("issue_token", "pipeline-bot", "--days", "7", stdout=out, stderr=io.StringIO())
        token = out.getvalue().strip()
        client = client_for(None)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert client.get("/api/v1/models/").status_code == 200
        expiry = AuthToken.objects.get(user=personas.bot).expiry
        assert timedelta(days=6) < expiry - timezone.now() <= timedelta(days=7)


class TestModels:
    def test_create_read_update_delete(self, personas):
        client = client_for(personas.owner)
        response = client.post(
            "/api/v1/models/",
            {
                "name": "churn",
                "task": "classification",
                "risk_tier": "low",
                "team": "credit-risk",
                "tags": ["crm"],
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        assert response.json()["owner"] == "owner"
        assert response.json()["team"] == "credit-risk"
        response = client.patch(
            "/api/v1/models/churn/", {"description": "who leaves"}, format="json"
        )
        assert response.status_code == 200
        assert client.get("/api/v1/models/churn/").json()["description"] == "who leaves"
        assert client.delete("/api/v1/models/churn/").status_code == 204
        assert client.get("/api/v1/models/churn/").status_code == 404

    def test_invalid_input_is_a_400_in_the_error_shape(self, personas):
        client = client_for(personas.owner)
        response = client.post("/api/v1/models/", {"name": "x", "task": "dance"}, format="json")
        assert response.status_code == 400
        error = error_of(response)
        assert error["code"] == "invalid"
        assert "task" in error["details"] and "risk_tier" in error["details"]
        response = client.post(
            "/api/v1/models/", data=b"{not json", content_type="application/json"
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "malformed_request"
        assert not RegisteredModel.objects.exists()

    def test_unknown_fields_on_update_are_refused(self, model, personas):
        response = client_for(personas.owner).patch(
            "/api/v1/models/credit/", {"name": "renamed"}, format="json"
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "immutable"

    def test_list_filters_searches_and_paginates(self, personas):
        client = client_for(personas.owner)
        for i in range(7):
            client.post(
                "/api/v1/models/",
                {
                    "name": f"m{i}",
                    "task": "regression" if i % 2 else "classification",
                    "risk_tier": "high" if i < 3 else "low",
                    "tags": ["even"] if i % 2 == 0 else [],
                },
                format="json",
            )

        def names(query):
            return [m["name"] for m in client.get(f"/api/v1/models/?{query}").json()["results"]]

        assert names("risk_tier=high") == ["m0", "m1", "m2"]
        assert names("task=regression") == ["m1", "m3", "m5"]
        assert names("tag=even") == ["m0", "m2", "m4", "m6"]
        assert names("q=m5") == ["m5"]
        page = client.get("/api/v1/models/?page_size=3&page=2").json()
        assert page["count"] == 7 and [m["name"] for m in page["results"]] == ["m3", "m4", "m5"]

    def test_listing_costs_a_fixed_number_of_queries(self, personas, django_assert_max_num_queries):
        client = client_for(personas.owner)
        for i in range(5):
            client.post(
                "/api/v1/models/",
                {"name": f"m{i}", "task": "regression", "risk_tier": "low"},
                format="json",
            )
        with django_assert_max_num_queries(8):
            assert len(client.get("/api/v1/models/").json()["results"]) == 5

    def test_an_unknown_api_path_answers_json_404(self, personas):
        response = client_for(personas.owner).get("/api/v1/nothing-here/")
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


class TestVersions:
    def test_register_then_read_the_validated_version(self, model, personas):
        client = client_for(personas.bot)
        metadata = {
            "signature": {"inputs": SIGNATURE},
            "metrics": {"accuracy": 0.93},
            "source": {"run_id": "run-42", "commit": "deadbeef"},
            "description": "first",
            "tags": ["nightly"],
        }
        response = post_version(client, metadata=metadata)
        assert response.status_code == 202, response.json()
        body = response.json()
        assert body["number"] == 1 and body["status"] == "pending"
        assert body["artifact"]["sha256"] == hashlib.sha256(classifier_bytes()).hexdigest()
        validate(ModelVersion.objects.get(number=1))
        body = client.get("/api/v1/models/credit/versions/1/").json()
        assert body["status"] == "ready"
        assert body["source"] == {"run_id": "run-42", "commit": "deadbeef"}
        assert body["signature"]["output"]["classes"] == [0, 1]
        assert body["hyperparameters"]["C"] == 1.0
        listing = client.get("/api/v1/models/credit/versions/").json()
        assert [v["number"] for v in listing["results"]] == [1]

    def test_the_artifact_downloads_with_its_digest(self, model, personas):
        version = ready_version(model, personas.bot)
        response = client_for(personas.viewer).get("/api/v1/models/credit/versions/1/artifact")
        assert response.status_code == 200
        content = b"".join(response.streaming_content)
        assert content == classifier_bytes()
        digest = hashlib.sha256(content).hexdigest()
        assert response["X-Checksum-SHA256"] == digest == version.artifact_sha256
        assert response["Repr-Digest"] == (
            f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:"
        )
        assert 'filename="credit-v1.skops"' in response["Content-Disposition"]

    def test_a_pickle_renamed_skops_registers_as_failed_with_its_reason(self, model, personas):
        import pickle

        from sklearn.linear_model import LogisticRegression

        response = post_version(client_for(personas.bot), data=pickle.dumps(LogisticRegression()))
        assert response.status_code == 202
        version = validate(ModelVersion.objects.get(number=1))
        assert version.status == "failed"
        body = client_for(personas.bot).get("/api/v1/models/credit/versions/1/").json()
        assert "pickle" in body["status_reason"]

    def test_a_path_like_artifact_name_never_becomes_a_path(
        self, model, personas, settings, tmp_path
    ):
        response = post_version(client_for(personas.bot), name="../../../../tmp/evil.skops")
        assert response.status_code == 202
        version = ModelVersion.objects.get()
        assert version.artifact_key.startswith("artifacts/sha256/")
        assert "evil" not in version.artifact_key
        root = tmp_path / "artifacts"
        stored = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        assert stored == [version.artifact_key]

    def test_an_oversize_upload_is_refused_unread_and_nothing_is_written(
        self, model, personas, settings, tmp_path
    ):
        settings.MAX_UPLOAD_BYTES = 1024
        response = post_version(client_for(personas.bot), data=classifier_bytes())
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"
        assert not ModelVersion.objects.exists()
        assert not (tmp_path / "artifacts").exists()

    @pytest.mark.parametrize(
        ("metadata", "needle"),
        [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "JSON object"),
            ({"metrics": {"acc": "high"}}, "finite number"),
            ({"signature": {"inputs": [{"name": "a", "dtype": "complex"}]}}, "dtype"),
            ({"colour": "blue"}, "unknown_fields"),
            ({"source": {"commit": "not-a-sha"}}, "hexadecimal"),
            ({"training_dataset": 999999, "target_column": "label"}, "not found"),
        ],
    )
    def test_malformed_metadata_is_a_clear_4xx_and_writes_nothing(
        self, model, personas, metadata, needle
    ):
        response = post_version(client_for(personas.bot), metadata=metadata)
        assert response.status_code in (400, 404), response.json()
        assert needle in json.dumps(response.json())
        assert not ModelVersion.objects.exists()

    def test_a_missing_artifact_is_a_400(self, model, personas):
        response = client_for(personas.bot).post(
            "/api/v1/models/credit/versions/", {"metadata": "{}"}, format="multipart"
        )
        assert response.status_code == 400
        assert "artifact" in error_of(response)["details"]

    def test_only_description_and_tags_can_be_patched(self, model, personas):
        ready_version(model, personas.bot)
        client = client_for(personas.owner)
        response = client.patch(
            "/api/v1/models/credit/versions/1/", {"description": "ok", "tags": ["t"]}, format="json"
        )
        assert response.status_code == 200
        assert response.json()["description"] == "ok"
        response = client.patch(
            "/api/v1/models/credit/versions/1/", {"signature": {"inputs": []}}, format="json"
        )
        assert response.status_code == 400
        assert error_of(response)["code"] == "immutable"
        assert ModelVersion.objects.get().signature["inputs"] == SIGNATURE


class TestDatasets:
    def upload(self, client, content: bytes, filename: str, **fields):
        handle = io.BytesIO(content)
        handle.name = filename
        payload = {"model": "credit", "name": "train", "role": "training", "file": handle}
        payload.update(fields)
        return client.post("/api/v1/datasets/", payload, format="multipart")

    def test_upload_read_list_download(self, model, personas):
        client = client_for(personas.bot)
        response = self.upload(client, parquet_bytes(training_frame()), "train.parquet")
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["row_count"] == 200 and body["source_format"] == "parquet"
        assert client.get(f"/api/v1/datasets/{body['id']}/").json()["sha256"] == body["sha256"]
        assert [
            d["id"] for d in client.get("/api/v1/datasets/?model=credit").json()["results"]
        ] == [body["id"]]
        download = client.get(f"/api/v1/datasets/{body['id']}/download")
        content = b"".join(download.streaming_content)
        assert (
            hashlib.sha256(content).hexdigest() == body["sha256"] == download["X-Checksum-SHA256"]
        )
        import pyarrow.parquet as pq

        assert pq.read_table(io.BytesIO(content)).to_pandas().shape == (200, 4)

    def test_a_csv_with_a_missing_column_is_a_400(self, model, personas):
        response = self.upload(client_for(personas.bot), b"a,b,c\n1,2,3\n4,5\n", "bad.csv")
        assert response.status_code == 400
        assert error_of(response)["code"] == "invalid_dataset"
        assert not Dataset.objects.exists()

    def test_a_fake_parquet_is_a_400(self, model, personas):
        response = self.upload(client_for(personas.bot), csv_bytes(training_frame()), "x.parquet")
        assert response.status_code == 400
        assert "not a Parquet file" in error_of(response)["message"]

    def test_a_dataset_for_an_invisible_model_is_a_404(self, model, personas):
        response = self.upload(client_for(personas.outsider), b"a\n1\n", "a.csv")
        assert response.status_code == 404


class TestAliases:
    def test_set_resolve_move_delete(self, model, personas):
        ready_version(model, personas.bot)
        ready_version(model, personas.bot)
        client = client_for(personas.bot)
        response = client.put(
            "/api/v1/models/credit/aliases/staging", {"version": 1}, format="json"
        )
        assert response.status_code == 200, response.json()
        resolved = client_for(personas.viewer).get("/api/v1/models/credit/aliases/staging")
        assert resolved.status_code == 200
        body = resolved.json()
        assert body["alias"] == "staging" and body["version"]["number"] == 1
        assert body["version"]["artifact"]["download_url"].endswith(
            "/api/v1/models/credit/versions/1/artifact"
        )
        client.put("/api/v1/models/credit/aliases/staging", {"version": 2}, format="json")
        assert client.get("/api/v1/models/credit/aliases/staging").json()["version"]["number"] == 2
        listing = client.get("/api/v1/models/credit/aliases/").json()
        assert [(a["name"], a["version"]) for a in listing] == [("staging", 2)]
        assert client.delete("/api/v1/models/credit/aliases/staging").status_code == 204
        assert client.get("/api/v1/models/credit/aliases/staging").status_code == 404

    def test_a_protected_alias_refuses_a_pipeline_with_the_reason(
        self, model, personas, without_alias_gates
    ):
        ready_version(model, personas.bot)
        owner = client_for(personas.owner)
        response = owner.put(
            "/api/v1/models/credit/aliases/production",
            {"version": 1, "protected": True},
            format="json",
        )
        assert response.status_code == 200 and response.json()["protected"] is True
        response = client_for(personas.bot).put(
            "/api/v1/models/credit/aliases/production", {"version": 1}, format="json"
        )
        assert response.status_code == 403
        assert error_of(response)["details"] == {"action": "deploy"}

    def test_aliasing_a_version_that_does_not_exist_is_a_404(self, model, personas):
        response = client_for(personas.bot).put(
            "/api/v1/models/credit/aliases/staging", {"version": 5}, format="json"
        )
        assert response.status_code == 404


# --- permission matrix ---------------------------------------------------------------

READ = [
    ("get", "/api/v1/models/credit/"),
    ("get", "/api/v1/models/credit/versions/"),
    ("get", "/api/v1/models/credit/versions/1/"),
    ("get", "/api/v1/models/credit/versions/1/artifact"),
    ("get", "/api/v1/models/credit/aliases/"),
    ("get", "/api/v1/models/credit/aliases/staging"),
    ("get", "/api/v1/datasets/{dataset}/"),
    ("get", "/api/v1/datasets/{dataset}/download"),
]
WRITE = [
    # method, path, body, the role that may do it
    ("patch", "/api/v1/models/credit/", {"description": "x"}, "maintainer"),
    ("patch", "/api/v1/models/credit/versions/1/", {"tags": ["x"]}, "maintainer"),
    ("post", "/api/v1/models/credit/versions/", "version", "contributor"),
    ("post", "/api/v1/datasets/", "dataset", "contributor"),
    ("put", "/api/v1/models/credit/aliases/staging", {"version": 1}, "contributor"),
    ("delete", "/api/v1/models/credit/aliases/staging", None, "contributor"),
    ("delete", "/api/v1/models/credit/", None, "owner"),
]


@pytest.fixture
def world(model, personas):
    ready_version(model, personas.bot)
    from registry import services

    services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
    handle = io.BytesIO(csv_bytes(training_frame()))
    dataset = services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="train",
        role="training",
        upload=handle,
        filename="t.csv",
    )
    return {"dataset": dataset.pk}


def call(client, method, path, body):
    if body == "version":
        return client.post(path, {"artifact": artifact_file()}, format="multipart")
    if body == "dataset":
        handle = io.BytesIO(b"a,b\n1,2\n")
        handle.name = "d.csv"
        return client.post(
            path,
            {"model": "credit", "name": "d", "role": "training", "file": handle},
            format="multipart",
        )
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize(("method", "path"), READ)
def test_read_matrix(world, personas, method, path):
    path = path.format(**world)
    assert call(client_for(None), method, path, None).status_code == 401
    assert call(client_for(personas.outsider), method, path, None).status_code == 404
    assert call(client_for(personas.viewer), method, path, None).status_code == 200
    assert call(client_for(personas.auditor), method, path, None).status_code == 200


@pytest.mark.parametrize(("method", "path", "body", "role"), WRITE)
def test_write_matrix(world, model, personas, method, path, body, role):
    path = path.format(**world)
    if path == "/api/v1/models/credit/" and method == "delete":
        # deleting needs a model without ready versions
        from registry.services import registered_model_create

        registered_model_create(
            actor=personas.owner, name="scratch", task="regression", risk_tier="low"
        )
        model = RegisteredModel.objects.get(name="scratch")
        grant(model, personas.viewer, "viewer")
        path = "/api/v1/models/scratch/"
    else:
        model = RegisteredModel.objects.get(name="credit")
    anonymous = call(client_for(None), method, path, body)
    assert anonymous.status_code == 401
    assert error_of(anonymous)["code"] == "not_authenticated"
    assert call(client_for(personas.outsider), method, path, body).status_code == 404
    forbidden = call(client_for(personas.viewer), method, path, body)
    assert forbidden.status_code == 403, forbidden.content
    assert error_of(forbidden)["code"] == "permission_denied"
    assert call(client_for(personas.auditor), method, path, body).status_code == 403
    allowed = personas.owner if role == "owner" else grant(model, personas.compliance, role)
    response = call(client_for(allowed), method, path, body)
    assert 200 <= response.status_code < 300, response.content


def test_list_endpoints_show_only_what_a_user_may_see(world, personas):
    assert client_for(personas.outsider).get("/api/v1/models/").json()["results"] == []
    assert client_for(personas.outsider).get("/api/v1/datasets/").json()["results"] == []
    assert [
        m["name"] for m in client_for(personas.viewer).get("/api/v1/models/").json()["results"]
    ] == ["credit"]
    assert client_for(None).get("/api/v1/models/").status_code == 401


def test_creating_a_model_needs_the_global_right(personas):
    body = {"name": "x", "task": "regression", "risk_tier": "low"}
    response = client_for(personas.viewer).post("/api/v1/models/", body, format="json")
    assert response.status_code == 403
    assert client_for(personas.bot).post("/api/v1/models/", body, format="json").status_code == 201
