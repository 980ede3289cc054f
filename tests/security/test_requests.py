"""Hostile request bodies answer a 4xx in the one error shape, never a 500 or a debug page."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import time
from typing import Any
from unittest import mock

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from common.auth import token_issue
from common.parsers import JSONTooDeep, json_loads
from common.uploads import upload_tmp_sweep
from tests.conftest import client_for, create_model, wait_for
from tests.security.requests_support import World, png_bytes, seed_world
from tests.security.web_support import multipart, start_web, stop_web

pytestmark = pytest.mark.django_db


@pytest.fixture(name="world")
def world_fixture(personas: Any) -> World:
    return seed_world(personas)


DEEP = "[" * 200_000 + "]" * 200_000
# The metadata form field is capped at 256 KiB: 100,000 levels fit.
DEEP_METADATA = "[" * 100_000 + "]" * 100_000


def error_of(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


def quiet(client: APIClient) -> APIClient:
    """Answer a 500 instead of re-raising the view's exception in the test."""
    client.raise_request_exception = False
    return client


# Every operation that decodes a JSON document, by its OpenAPI path and method,
# with how to fill its path from the seeded world. The multipart ``metadata``
# field of a version registration is the one JSON document inside a form.
JSON_ENTRY_POINTS: dict[tuple[str, str], Any] = {
    ("post", "/api/v1/auth/token/"): {},
    ("post", "/api/v1/models/"): {},
    ("patch", "/api/v1/models/{name}/"): {},
    ("put", "/api/v1/models/{model_name}/aliases/{alias}"): {"alias": "staging"},
    ("post", "/api/v1/models/{model_name}/labels/"): {},
    ("post", "/api/v1/models/{model_name}/monitors/"): {},
    ("patch", "/api/v1/models/{model_name}/monitors/{id}/"): {"id": "monitor"},
    ("post", "/api/v1/models/{model_name}/versions/"): "metadata",
    ("patch", "/api/v1/models/{model_name}/versions/{number}/"): {},
    ("post", "/api/v1/models/{model_name}/versions/{number}/evaluations/"): {},
    ("post", "/api/v1/models/{model_name}/versions/{number}/explanations/"): {},
    ("post", "/api/v1/models/{model_name}/versions/{number}/fairness-audits/"): {},
    (
        "post",
        "/api/v1/models/{model_name}/versions/{number}/fairness-audits/{audit_id}/mitigations/",
    ): {},
    ("patch", "/api/v1/models/{model_name}/versions/{number}/model-card"): {},
    ("post", "/api/v1/models/{model_name}/versions/{number}/predictions/"): {},
    ("post", "/api/v1/models/{model_name}/versions/{number}/review/signoffs/"): {},
    ("post", "/api/v1/webhooks/"): {},
    ("post", "/api/v1/alerts/{id}/resolve/"): {},
    ("put", "/api/v1/models/{model_name}/data-policy"): {},
    ("post", "/api/v1/models/{model_name}/risk-tier-changes/"): {},
    ("post", "/api/v1/models/{model_name}/risk-tier-changes/{id}/approve/"): {"id": "tier_change"},
    ("post", "/api/v1/models/{model_name}/risk-tier-changes/{id}/reject/"): {"id": "tier_change"},
    ("post", "/api/v1/models/{model_name}/environments/"): {},
    ("post", "/api/v1/models/{model_name}/environments/{environment}/deployments/"): {
        "environment": "staging"
    },
    ("post", "/api/v1/models/{model_name}/environments/{environment}/rollback"): {
        "environment": "staging"
    },
    ("post", "/api/v1/models/{model_name}/environments/{environment}/unfreeze"): {
        "environment": "staging"
    },
    # A deployment's actions read the body before looking the deployment up: {id}
    # may be any id (the seeded alert's).
    **{
        (
            "post",
            f"/api/v1/models/{{model_name}}/environments/{{environment}}/deployments/{{id}}/{a}",
        ): {"environment": "staging"}
        for a in ("promote", "pause", "resume", "abort")
    },
    ("post", "/api/v1/models/{model_name}/retrain/"): {},
    ("put", "/api/v1/models/{model_name}/retraining-policy"): {},
}
# Declared with a body in the schema, but the view reads none.
READS_NO_BODY = {("post", "/api/v1/alerts/{id}/acknowledge/")}


def fill(template: str, world: World, extra: dict[str, str]) -> str:
    values = {
        "name": world.model.name,
        "model_name": world.model.name,
        "number": str(world.version.number),
        "audit_id": str(world.audit.pk),
        "id": str(world.alert.pk),
        # An extra value naming a seeded object stands for that object's id.
        **{key: str(getattr(world, value).pk) for key, value in extra.items() if key == "id"},
        **{key: value for key, value in extra.items() if key != "id"},
    }
    return template.format(**values)


def test_the_list_of_json_entry_points_is_every_operation_that_takes_json() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    taking_json = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
        and (
            "application/json" in operation["requestBody"]["content"] or path.endswith("/versions/")
        )
    }
    assert taking_json == set(JSON_ENTRY_POINTS) | READS_NO_BODY


@pytest.mark.parametrize(
    ("method", "template"), sorted(JSON_ENTRY_POINTS), ids=lambda v: v.strip("/")
)
def test_json_nested_200000_deep_is_a_400_at_every_json_entry_point(
    world: World, method: str, template: str
) -> None:
    spec = JSON_ENTRY_POINTS[(method, template)]
    path = fill(template, world, spec if isinstance(spec, dict) else {})
    client = quiet(client_for(world.root))
    if spec == "metadata":
        artifact = io.BytesIO(b"artifact")
        artifact.name = "model.skops"
        response = client.post(
            path, {"artifact": artifact, "metadata": DEEP_METADATA}, format="multipart"
        )
        assert response.status_code == 400, response.content[:300]
        assert "nested deeper than 64 levels" in error_of(response)["message"]
        return
    response = client.generic(method.upper(), path, DEEP, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    assert error["code"] == "json_too_deep"
    assert error["details"] == {"max_depth": 64}


def test_an_anonymous_caller_gets_the_400_too_with_debug_on(settings: Any, personas: Any) -> None:
    settings.DEBUG = True
    response = quiet(APIClient()).generic(
        "POST", "/api/v1/auth/token/", DEEP, content_type="application/json"
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "json_too_deep"


def test_nesting_up_to_the_limit_is_accepted_and_one_level_more_is_not() -> None:
    at_limit = "[" * 64 + "]" * 64
    assert json_loads(at_limit, max_depth=64) is not None
    with pytest.raises(JSONTooDeep):
        json_loads("[" * 65 + "]" * 65, max_depth=64)
    # Depth, not bracket count: many shallow columns are fine.
    wide = json.dumps({"columns": {f"c{i}": [1, 2, 3] for i in range(500)}})
    assert len(json_loads(wide, max_depth=3)["columns"]) == 500
    with pytest.raises(JSONTooDeep):
        json_loads('{"a": {"b": {"c": [1]}}}', max_depth=3)


def test_nan_and_infinity_are_not_json(world: World) -> None:
    with pytest.raises(ValueError, match="NaN"):
        json_loads('{"x": NaN}')
    response = client_for(world.root).post(
        "/api/v1/models/",
        '{"name": "m", "task": "regression", "risk_tier": Infinity}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_request"


# --- binary files posted as CSV --------------------------------------------------------


@pytest.mark.parametrize("target", ["dataset", "predictions", "labels"])
def test_a_png_posted_as_a_csv_file_is_a_400(world: World, target: str) -> None:
    upload = io.BytesIO(png_bytes())
    upload.name = "data.csv"
    model = world.model.name
    path, fields, code = {
        "dataset": (
            "/api/v1/datasets/",
            {"model": model, "name": "pic", "role": "evaluation"},
            "invalid_dataset",
        ),
        "predictions": (
            f"/api/v1/models/{model}/versions/1/predictions/",
            {"batch_id": "b1"},
            "invalid_batch",
        ),
        "labels": (f"/api/v1/models/{model}/labels/", {"batch_id": "b1"}, "invalid_batch"),
    }[target]
    response = quiet(client_for(world.root)).post(
        path, {**fields, "file": upload}, format="multipart"
    )
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    assert error["code"] == code
    assert "UTF-8" in error["message"]


# --- errors outside the domain: never a debug page under /api/ -----------------------------


def test_a_bug_in_an_api_view_answers_json_500_with_debug_on(
    settings: Any, world: World, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    from registry import selectors

    def broken(**kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(selectors, "model_list", broken)
    settings.DEBUG = True
    response = quiet(client_for(world.root)).get("/api/v1/models/")
    assert response.status_code == 500
    assert error_of(response)["code"] == "server_error"
    assert b"Traceback" not in response.content and b"ZeroDivisionError" not in response.content
    # Still logged, with the traceback, where Django logs request errors.
    logged = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert logged and logged[0].exc_info[0] is ZeroDivisionError


def test_a_bug_still_fails_the_test_that_caused_it(world: World, monkeypatch: Any) -> None:
    from registry import selectors

    monkeypatch.setattr(selectors, "model_list", lambda **kw: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        client_for(world.root).get("/api/v1/models/")


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [
        ({"path": "/api/v1/no-such-thing/"}, 404, "not_found"),
        ({"path": "/api/v1/models/", "HTTP_HOST": "evil.example"}, 400, "bad_request"),
    ],
    ids=["unknown-url", "disallowed-host"],
)
def test_django_own_error_pages_under_api_are_the_json_shape_with_debug_on(
    settings: Any, db: Any, request_kwargs: dict[str, str], status: int, code: str
) -> None:
    settings.DEBUG = True
    response = quiet(APIClient()).get(**request_kwargs)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert response["X-Request-ID"]


def test_ui_pages_keep_django_error_pages(settings: Any, db: Any) -> None:
    response = quiet(APIClient()).get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- spooled uploads left behind by a killed process ---------------------------------------


def test_the_sweep_deletes_only_upload_files_older_than_the_longest_request(
    settings: Any, tmp_path: Any
) -> None:
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.UPLOAD_TMP_MAX_AGE_SECONDS = 3600
    abandoned = tmp_path / "tmpa1b2c3.upload.csv"
    in_flight = tmp_path / "tmpd4e5f6.upload.skops"
    not_ours = tmp_path / "notes.txt"
    for path in (abandoned, in_flight, not_ours):
        path.write_bytes(b"x" * 1024)
    two_hours_ago = time.time() - 7200
    for path in (abandoned, not_ours):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert upload_tmp_sweep() == 1
    assert not abandoned.exists()
    assert in_flight.exists() and not_ours.exists()


def test_uploads_spool_to_the_one_upload_directory(
    world: World, settings: Any, tmp_path: Any
) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    seen: list[str] = []
    from registry import services

    real = services.dataset_upload

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs["upload"].temporary_file_path())
        return real(**kwargs)

    with mock.patch.object(services, "dataset_upload", spy):
        upload = io.BytesIO(b"a,b\n1,2\n")
        upload.name = "d.csv"
        response = client_for(world.root).post(
            "/api/v1/datasets/",
            {"model": world.model.name, "name": "small", "role": "evaluation", "file": upload},
            format="multipart",
        )
    assert response.status_code == 201
    assert os.path.dirname(seen[0]) == str(folder)
    assert list(folder.iterdir()) == []  # deleted when the request ended


@pytest.mark.django_db(transaction=True)
def test_a_file_left_by_a_web_worker_killed_mid_upload_is_deleted_when_the_next_one_starts(
    personas: Any, worker_env: dict[str, str], tmp_path: Any
) -> None:
    model = create_model(personas.owner)
    token, _expiry = token_issue(user=personas.owner)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    web = start_web(
        {**worker_env, "UPLOAD_TMP_DIR": str(uploads), "UPLOAD_TMP_MAX_AGE_SECONDS": "2"},
        tmp_path / "web.log",
    )
    try:
        # Announce a 42 MB dataset, send its first 8 MB and stall, as a slow client does.
        body, content_type = multipart(
            {"model": model.name, "name": "big", "role": "training"},
            {"file": ("big.csv", b"a,b\n" + b"1,2\n" * (42 * 1024 * 1024 // 4))},
        )
        sock = socket.create_connection(("127.0.0.1", web.port))
        head = (
            f"POST /api/v1/datasets/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {token}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: 8 * 1024 * 1024])
        spooled = wait_for(
            lambda: [p for p in uploads.iterdir() if p.stat().st_size > 4 * 1024 * 1024],
            timeout=30,
            message="the upload to spool to disk",
        )[0]
        time.sleep(2.5)  # older than UPLOAD_TMP_MAX_AGE_SECONDS: nothing writes to it any more
        (killed,) = web.worker_pids()
        os.kill(killed, signal.SIGKILL)
        sock.close()
        wait_for(lambda: web.worker_pids() not in ([], [killed]), message="a new worker")
        wait_for(lambda: not spooled.exists(), timeout=30, message="the sweep at worker start")
        assert "Deleted 1 abandoned upload file(s)" in web.output()
    finally:
        stop_web(web)
