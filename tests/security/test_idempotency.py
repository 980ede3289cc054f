"""Safe retries: the Idempotency-Key header on version registration, dataset upload and
prediction and label batches, down to a web process killed between commit and answer."""

from __future__ import annotations

import http.client
import io
import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from common.auth import token_issue
from common.idempotency import idempotency_keys_purge
from common.models import IdempotencyKey
from monitoring.models import LabelBatch, PredictionBatch
from registry import services as registry_services
from registry.models import Dataset, ModelVersion
from tests.conftest import (
    SIGNATURE,
    classifier_bytes,
    client_for,
    create_model,
    csv_bytes,
    grant,
    regressor_bytes,
    training_frame,
)
from tests.monitoring.conftest import prediction_frame
from tests.security.requests_support import World, seed_world
from tests.security.web_support import multipart, start_web, stop_web

METADATA = json.dumps({"signature": {"inputs": SIGNATURE}, "metrics": {"auc": 0.8}})


@pytest.fixture(name="world")
def world_fixture(personas: Any) -> World:
    return seed_world(personas)


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def post_version(
    client: Any, key: str | None, artifact: bytes | None = None, model: str = "credit"
) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        f"/api/v1/models/{model}/versions/",
        {"artifact": named(artifact or classifier_bytes(), "model.skops"), "metadata": METADATA},
        format="multipart",
        **headers,
    )


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


# --- one endpoint in depth: version registration ----------------------------------------


@pytest.mark.django_db
class TestVersionRegistration:
    def test_a_retry_with_the_same_key_and_body_returns_the_first_answer_and_registers_once(
        self, world: World, personas: Any
    ) -> None:
        bot = client_for(personas.bot)
        first = post_version(bot, "run-42")
        retry = post_version(bot, "run-42")
        assert first.status_code == retry.status_code == 202
        assert retry.json() == first.json()
        assert retry["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert ModelVersion.objects.filter(registered_model=world.model).count() == 2  # v1 + one

    def test_without_a_key_a_retry_registers_again(self, world: World, personas: Any) -> None:
        bot = client_for(personas.bot)
        numbers = [post_version(bot, None).json()["number"] for _ in range(2)]
        assert numbers == [2, 3]

    def test_the_same_key_with_another_artifact_is_a_409_that_changes_nothing(
        self, world: World, personas: Any
    ) -> None:
        bot = client_for(personas.bot)
        assert post_version(bot, "run-42").status_code == 202
        other = post_version(bot, "run-42", artifact=regressor_bytes())
        assert other.status_code == 409
        assert error_code(other) == "idempotency_key_reused"
        assert ModelVersion.objects.filter(registered_model=world.model).count() == 2

    def test_a_key_is_scoped_by_user_and_by_endpoint(self, world: World, personas: Any) -> None:
        other_model = create_model(personas.owner, name="other")
        grant(other_model, personas.bot, "contributor")
        bot, owner = client_for(personas.bot), client_for(personas.owner)
        assert post_version(bot, "k").json()["number"] == 2
        assert post_version(owner, "k").json()["number"] == 3  # another user
        assert post_version(bot, "k", model="other").json()["number"] == 1  # another path
        assert IdempotencyKey.objects.filter(key="k").count() == 3

    def test_a_refused_request_keeps_no_key_so_its_corrected_retry_runs(
        self, world: World, personas: Any
    ) -> None:
        bot = client_for(personas.bot)
        refused = bot.post(
            "/api/v1/models/credit/versions/",
            {"artifact": named(classifier_bytes(), "m.skops"), "metadata": '{"parent": 99}'},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="run-43",
        )
        assert refused.status_code == 400
        assert not IdempotencyKey.objects.filter(key="run-43").exists()
        assert post_version(bot, "run-43").status_code == 202

    @pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve"])
    def test_a_malformed_key_is_a_400(self, world: World, personas: Any, key: str) -> None:
        response = post_version(client_for(personas.bot), key)
        assert response.status_code == 400
        assert error_code(response) == "invalid_idempotency_key"
        assert ModelVersion.objects.filter(registered_model=world.model).count() == 1

    def test_keys_are_kept_for_a_day_then_purged_and_acted_on_again(
        self, world: World, personas: Any
    ) -> None:
        bot = client_for(personas.bot)
        assert post_version(bot, "daily").json()["number"] == 2
        IdempotencyKey.objects.filter(key="daily").update(
            created_at=timezone.now() - timedelta(hours=23)
        )
        assert idempotency_keys_purge() == 0
        assert post_version(bot, "daily").json()["number"] == 2  # replayed
        IdempotencyKey.objects.filter(key="daily").update(
            created_at=timezone.now() - timedelta(hours=25)
        )
        assert post_version(bot, "daily").json()["number"] == 3  # a new request
        IdempotencyKey.objects.filter(key="daily").update(
            created_at=timezone.now() - timedelta(hours=25)
        )
        assert idempotency_keys_purge() == 1
        assert not IdempotencyKey.objects.exists()


# --- every opted-in endpoint: a retry replays and acts once -----------------------------------


def _dataset(world: World, personas: Any, body: bytes) -> tuple[str, dict[str, Any], str, Any]:
    return (
        "/api/v1/datasets/",
        {"model": "credit", "name": "eval", "role": "evaluation", "file": named(body, "e.csv")},
        "multipart",
        Dataset.objects.filter(name="eval"),
    )


def _predictions(world: World, personas: Any, body: bytes) -> tuple[str, dict[str, Any], str, Any]:
    return (
        "/api/v1/models/credit/versions/1/predictions/",
        {"batch_id": "b1", "file": named(body, "p.csv")},
        "multipart",
        PredictionBatch.objects.all(),
    )


def _labels(world: World, personas: Any, body: bytes) -> tuple[str, dict[str, Any], str, Any]:
    frame = prediction_frame(50)
    return (
        "/api/v1/models/credit/labels/",
        {
            "batch_id": "l1",
            "columns": {"request_id": frame["request_id"].tolist(), "label": [1] * 50},
        },
        "json",
        LabelBatch.objects.all(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "endpoint", [_dataset, _predictions, _labels], ids=lambda f: f.__name__[1:]
)
def test_each_upload_endpoint_replays_a_retried_key_and_refuses_it_with_another_body(
    world: World, personas: Any, endpoint: Any
) -> None:
    first_body = (
        csv_bytes(prediction_frame(50))
        if endpoint is _predictions
        else csv_bytes(training_frame(50))
    )
    path, data, fmt, created = endpoint(world, personas, first_body)
    before = created.count()
    bot = client_for(personas.owner)
    first = bot.post(path, data, format=fmt, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 201, first.content
    path, data, fmt, _ = endpoint(world, personas, first_body)
    retry = bot.post(path, data, format=fmt, HTTP_IDEMPOTENCY_KEY="k1")
    assert (retry.status_code, retry.json()) == (201, first.json())
    assert retry["Idempotent-Replayed"] == "true"
    assert created.count() == before + 1
    path, data, fmt, _ = endpoint(world, personas, first_body[:-40] + b"\n")
    if fmt == "json":
        data = {**data, "batch_id": "l2"}
    changed = bot.post(path, data, format=fmt, HTTP_IDEMPOTENCY_KEY="k1")
    assert changed.status_code == 409
    assert error_code(changed) == "idempotency_key_reused"
    assert created.count() == before + 1


# --- a concurrent duplicate --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_register_one_version(
    personas: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = create_model(personas.owner)
    grant(model, personas.bot, "contributor")
    # Hold the first request inside its transaction long enough for the second
    # to arrive while the first has claimed the key but not committed.
    entered = threading.Event()
    register = registry_services.model_version_register

    def slow_register(**kwargs: Any) -> Any:
        entered.set()
        threading.Event().wait(0.5)
        return register(**kwargs)

    monkeypatch.setattr(registry_services, "model_version_register", slow_register)
    responses: list[Any] = []

    def send() -> None:
        try:
            responses.append(post_version(client_for(personas.bot), "run-7"))
        finally:
            connection.close()

    first = threading.Thread(target=send)
    first.start()
    assert entered.wait(10)
    second = threading.Thread(target=send)
    second.start()
    first.join(30)
    second.join(30)
    assert sorted(r.status_code for r in responses) == [202, 202]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert ModelVersion.objects.filter(registered_model=model).count() == 1


# --- a real web process killed after the commit, before the answer ----------------------------


@pytest.mark.django_db(transaction=True)
def test_a_retry_after_the_web_process_died_between_commit_and_answer_gets_the_first_answer(
    personas: Any, worker_env: dict[str, str], tmp_path: Any
) -> None:
    model = create_model(personas.owner)
    grant(model, personas.bot, "contributor")
    token, _expiry = token_issue(user=personas.bot)
    path = f"/api/v1/models/{model.name}/versions/"
    body, content_type = multipart(
        {"metadata": METADATA}, {"artifact": ("model.skops", classifier_bytes())}
    )
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": content_type,
        "Idempotency-Key": "pipeline-run-42",
    }

    faulty = start_web(
        {**worker_env, "MODELGATE_FAULT": f"kill_after_commit:{path}"}, tmp_path / "web-1.log"
    )
    try:
        connection_1 = faulty.connection()
        connection_1.request("POST", path, body, headers)
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            connection_1.getresponse()  # the worker died: no answer at all
    finally:
        stop_web(faulty)
    # The change was committed before the process died, with its key and answer.
    assert ModelVersion.objects.filter(registered_model=model).count() == 1
    assert IdempotencyKey.objects.get(key="pipeline-run-42").status_code == 202

    healthy = start_web(worker_env, tmp_path / "web-2.log")
    try:
        connection_2 = healthy.connection()
        connection_2.request("POST", path, body, headers)
        retry = connection_2.getresponse()
        answer = json.loads(retry.read())
        assert retry.status == 202, answer
        assert retry.getheader("Idempotent-Replayed") == "true"
        assert (answer["number"], answer["status"]) == (1, "pending")

        other, other_type = multipart(
            {"metadata": METADATA}, {"artifact": ("model.skops", regressor_bytes())}
        )
        connection_2.request("POST", path, other, {**headers, "Content-Type": other_type})
        conflict = connection_2.getresponse()
        assert conflict.status == 409
        assert json.loads(conflict.read())["error"]["code"] == "idempotency_key_reused"
    finally:
        stop_web(healthy)
    assert ModelVersion.objects.filter(registered_model=model).count() == 1
