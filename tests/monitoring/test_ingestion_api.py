"""Prediction and label ingestion through the API: formats, refusals, idempotency."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from common.models import AuditEvent
from common.storage import open_blob
from monitoring import drift
from monitoring.models import LabelBatch, PredictionBatch, ReferenceProfile
from tests.conftest import client_for, csv_bytes, parquet_bytes
from tests.monitoring.conftest import prediction_frame

pytestmark = pytest.mark.django_db


def url(version: Any) -> str:
    return f"/api/v1/models/{version.registered_model.name}/versions/{version.number}/predictions/"


def as_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    out = {}
    for name, col in frame.items():
        if pd.api.types.is_datetime64_any_dtype(col):
            out[name] = [t.isoformat() for t in col]
        else:
            out[name] = col.tolist()
    return out


def post_json(client: Any, version: Any, batch_id: str, frame: pd.DataFrame) -> Any:
    return client.post(
        url(version), {"batch_id": batch_id, "columns": as_columns(frame)}, format="json"
    )


def post_file(client: Any, version: Any, batch_id: str, data: bytes, name: str) -> Any:
    upload = io.BytesIO(data)
    upload.name = name
    return client.post(url(version), {"batch_id": batch_id, "file": upload}, format="multipart")


def stored_frame(batch: PredictionBatch) -> pd.DataFrame:
    with open_blob(batch.storage_key) as fh:
        return pq.read_table(io.BytesIO(fh.read())).to_pandas()


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_each_format_stores_the_batch_columnar_with_a_summary(
    monitored: Any, personas: Any, fmt: str
) -> None:
    bot = client_for(personas.bot)
    frame = prediction_frame(300)
    if fmt == "json":
        response = post_json(bot, monitored, "b1", frame)
    elif fmt == "csv":
        response = post_file(bot, monitored, "b1", csv_bytes(frame), "b1.csv")
    else:
        response = post_file(bot, monitored, "b1", parquet_bytes(frame), "b1.parquet")
    assert response.status_code == 201, response.json()
    assert response.json()["row_count"] == 300
    batch = PredictionBatch.objects.get(version=monitored, batch_id="b1")
    assert batch.first_at.isoformat().startswith("2026-01-01T00:00:00")
    assert batch.last_at.isoformat().startswith("2026-01-01T00:04:59")
    stored = stored_frame(batch)
    assert list(stored["request_id"]) == list(frame["request_id"])
    np.testing.assert_allclose(stored["income"], frame["income"])
    # The summary was built on the version's reference profile and merges back to the rows.
    profile = ReferenceProfile.objects.get(version=monitored)
    summary = drift.Summary.from_dict(batch.summary)
    assert summary.profile_fingerprint == profile.fingerprint
    assert summary.rows == 300
    assert summary.columns["age"].count == 300
    assert summary.columns["age"].mean == pytest.approx(frame["age"].mean())
    assert AuditEvent.objects.filter(action="monitoring.predictions.ingest").count() == 1


def test_a_repeated_batch_id_is_not_counted_twice(monitored: Any, personas: Any) -> None:
    bot = client_for(personas.bot)
    frame = prediction_frame(50)
    assert post_json(bot, monitored, "same", frame).status_code == 201
    again = post_json(bot, monitored, "same", frame)
    assert again.status_code == 200
    assert PredictionBatch.objects.filter(version=monitored).count() == 1
    other = post_json(bot, monitored, "same", prediction_frame(50, seed=9))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "batch_conflict"


def _refused(response: Any, needle: str) -> None:
    assert response.status_code == 400, response.json()
    body = response.json()["error"]
    assert body["code"] == "invalid_batch"
    assert any(needle in p for p in body["details"]["problems"]), body


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: f.drop(columns=["income"]), "missing columns: ['income']"),
        (lambda f: f.assign(extra=1.0), "unknown columns"),
        (lambda f: f.assign(age="old"), "'age' must be numeric"),
        (lambda f: f.assign(prediction=np.nan), "'prediction' has"),
        (lambda f: f.assign(income=np.inf), "'income' has"),
        (lambda f: f.assign(request_id="dup"), "duplicate values"),
        (lambda f: f.assign(probability=1.5), "probabilities in [0, 1]"),
        (lambda f: f.assign(timestamp="yesterday"), "not ISO 8601"),
        (lambda f: f.iloc[:0], "no rows"),
    ],
)
def test_a_bad_batch_is_refused_whole_and_nothing_is_stored(
    monitored: Any, personas: Any, mutate: Any, needle: str
) -> None:
    bot = client_for(personas.bot)
    frame = mutate(prediction_frame(20))
    response = post_file(bot, monitored, "bad", parquet_bytes(frame), "bad.parquet")
    _refused(response, needle)
    assert not PredictionBatch.objects.exists()


def test_a_hundred_thousand_columns_are_refused_before_parsing(
    monitored: Any, personas: Any
) -> None:
    header = ",".join(f"c{i}" for i in range(100_000)).encode() + b"\n"
    response = post_file(client_for(personas.bot), monitored, "wide", header + b"1\n", "w.csv")
    _refused(response, "100000 columns")
    assert not PredictionBatch.objects.exists()


def test_json_refusals(monitored: Any, personas: Any) -> None:
    bot = client_for(personas.bot)
    response = bot.post(url(monitored), {"columns": {"a": [1]}}, format="json")
    assert response.status_code == 400
    response = bot.post(
        url(monitored), {"batch_id": "x", "columns": {"a": [1], "b": [1, 2]}}, format="json"
    )
    _refused(response, "different lengths")
    assert not PredictionBatch.objects.exists()


def test_timestamps_with_offsets_are_converted_to_utc(monitored: Any, personas: Any) -> None:
    frame = prediction_frame(2)
    frame["timestamp"] = ["2026-03-01T10:00:00+02:00", "2026-03-01T09:30:00Z"]
    response = post_json(client_for(personas.bot), monitored, "tz", frame)
    assert response.status_code == 201, response.json()
    assert response.json()["first_at"].startswith("2026-03-01T08:00:00")
    assert response.json()["last_at"].startswith("2026-03-01T09:30:00")
    frame["timestamp"] = ["2026-03-01T10:00:00+02:00", "2026-03-01T09:30:00"]
    _refused(post_json(client_for(personas.bot), monitored, "mixed", frame), "not ISO 8601")


def test_a_body_that_is_not_an_object_is_refused(monitored: Any, personas: Any) -> None:
    response = client_for(personas.bot).post(url(monitored), [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_batch"


def test_a_csv_that_is_not_a_table_is_refused(monitored: Any, personas: Any) -> None:
    response = post_file(
        client_for(personas.bot), monitored, "junk", b"PAR1 not really parquet", "x.parquet"
    )
    _refused(response, "cannot be read")


def test_ingestion_permissions(monitored: Any, personas: Any) -> None:
    frame = prediction_frame(10)
    assert post_json(client_for(personas.outsider), monitored, "p", frame).status_code == 404
    assert post_json(client_for(personas.viewer), monitored, "p", frame).status_code == 403
    assert client_for(None).post(url(monitored), {}, format="json").status_code in (401, 403)
    assert not PredictionBatch.objects.exists()


def test_labels_are_ingested_and_idempotent(monitored: Any, personas: Any) -> None:
    bot = client_for(personas.bot)
    name = monitored.registered_model.name
    body = {"batch_id": "l1", "columns": {"request_id": ["r0", "r1"], "label": [1, 0]}}
    assert bot.post(f"/api/v1/models/{name}/labels/", body, format="json").status_code == 201
    assert bot.post(f"/api/v1/models/{name}/labels/", body, format="json").status_code == 200
    assert LabelBatch.objects.count() == 1
    bad = {"batch_id": "l2", "columns": {"request_id": ["r0", "r1"], "label": [1, None]}}
    response = bot.post(f"/api/v1/models/{name}/labels/", bad, format="json")
    _refused(response, "'label' has 1 missing")
    bad = {"batch_id": "l3", "columns": {"request_id": ["r0"], "truth": [1]}}
    _refused(bot.post(f"/api/v1/models/{name}/labels/", bad, format="json"), "exactly the columns")
    assert LabelBatch.objects.count() == 1
