"""Privacy of logged data: column rules at ingestion, drift on hashed columns, retention.

Each test fails on the code before this catalogue: batches kept whatever callers
sent, forever; there was no data policy, no keyed hash and no retention sweep.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from common.jobs import job_claim
from common.models import AuditEvent, JobStatus
from common.storage import blob_storage
from governance import reviews
from monitoring import checks, drift, profiles, retention, services
from monitoring.models import Alert, CheckRun, LabelBatch, PredictionBatch
from registry import services as registry_services
from tests.conftest import client_for, grant, parquet_bytes, ready_version

pytestmark = pytest.mark.django_db
KEY = "k" * 8 + "0123456789abcdefghijklmnopqrstuv"
INPUTS = ["region", "children", "income", "score"]
END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
REGIONS = ["north", "south", "east", "west"]


def frame_of(n: int, *, seed: int, regions: list[float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "region": rng.choice(REGIONS, size=n, p=regions or [0.4, 0.3, 0.2, 0.1]),
            "children": rng.integers(0, 4, n),
            "income": rng.normal(50, 10, n).round(2),
            "score": rng.random(n),
        }
    )
    frame["label"] = (frame["score"] > 0.5).astype("int64")
    return frame


def classifier(frame: pd.DataFrame) -> bytes:
    encode = ColumnTransformer(
        [("region", OneHotEncoder(handle_unknown="ignore"), ["region"])], remainder="passthrough"
    )
    return sio.dumps(
        make_pipeline(encode, LogisticRegression(max_iter=500)).fit(frame[INPUTS], frame["label"])
    )


@pytest.fixture
def version(model: Any, personas: Any, settings: Any) -> Any:
    """A ready classifier of the ``credit`` model with a categorical input, ``region``."""
    settings.MONITORING_HASH_KEY = KEY
    training = frame_of(3000, seed=0)
    dataset = registry_services.dataset_upload(
        actor=personas.owner,
        model=model,
        name="training",
        role="training",
        upload=io.BytesIO(parquet_bytes(training)),
        filename="training.parquet",
    )
    ready = ready_version(
        model,
        personas.owner,
        artifact=classifier(training),
        signature_inputs=None,
        training_dataset=dataset,
        target_column="label",
    )
    # The drift baseline, in-process: a worker's ProfileBuild job builds it otherwise.
    profiles.reference_profile_ensure(actor=services.WORKER, version=ready)
    return ready


def predictions(
    n: int,
    *,
    seed: int,
    regions: list[float] | None = None,
    prefix: str = "r",
    start: str = "2026-01-01T00:00:00",
) -> pd.DataFrame:
    frame = frame_of(n, seed=seed, regions=regions).drop(columns=["label"])
    frame.insert(0, "request_id", [f"{prefix}{i}" for i in range(n)])
    frame["timestamp"] = pd.date_range(start, periods=n, freq="s", tz="UTC")
    frame["prediction"] = (frame["score"] > 0.5).astype("int64")
    return frame


def ingest(version: Any, actor: Any, frame: pd.DataFrame, batch_id: str) -> PredictionBatch:
    return services.prediction_batch_ingest(
        actor=actor,
        version=version,
        batch_id=batch_id,
        table=pa.Table.from_pandas(frame, preserve_index=False),
    )[0]


def set_policy(actor: Any, **body: Any) -> Any:
    body = {"retention_days": None, "dropped_columns": [], "hashed_columns": [], **body}
    return client_for(actor).put("/api/v1/models/credit/data-policy", body, format="json")


def mac(column: str, text: str) -> str:
    """The documented hash, computed with the standard library."""
    message = f"{column}\x1f{text}".encode()
    return hmac.new(KEY.encode(), message, hashlib.sha256).hexdigest()[:16]


def stored_table(batch: PredictionBatch) -> pa.Table:
    with blob_storage("batches").open(batch.storage_key, "rb") as fh:
        return pq.read_table(io.BytesIO(fh.read()))


def run_check(monitor: Any, end: dt.datetime = END) -> CheckRun:
    run, _ = services.check_run_request(actor=monitor.created_by, monitor=monitor, window_end=end)
    job = job_claim(CheckRun, run.pk)
    assert job is not None
    return checks.check_run_execute(job=job)


def column(run: CheckRun, name: str) -> dict[str, Any]:
    return next(c for c in run.drift["columns"] if c["column"] == name)


# --- column rules at ingestion ----------------------------------------------------------


def test_hashed_and_dropped_columns_never_reach_the_stored_file_or_summary(version, personas):
    assert (
        set_policy(
            personas.owner, hashed_columns=["region", "children"], dropped_columns=["income"]
        ).status_code
        == 200
    )
    sent = predictions(300, seed=1)
    batch = ingest(version, personas.bot, sent, "b1")

    table = stored_table(batch)
    assert "income" not in table.column_names
    assert table.column("region").to_pylist() == [mac("region", r) for r in sent["region"]]
    # A numeric input is hashed as the text of its float64 value; stored as strings.
    assert table.schema.field("children").type == pa.string()
    assert table.column("children").to_pylist() == [
        mac("children", repr(float(c))) for c in sent["children"]
    ]
    with blob_storage("batches").open(batch.storage_key, "rb") as fh:
        raw = fh.read()
    summary = json.dumps(batch.summary)
    for region in REGIONS:
        assert region.encode() not in raw and f'"{region}"' not in summary
    assert "income" not in batch.summary["columns"]
    assert batch.summary["unavailable"]["income"] == "column missing from batch"
    # A batch without the dropped column is accepted too: it is not required any more.
    ingest(
        version, personas.bot, predictions(50, seed=2, prefix="s").drop(columns=["income"]), "b2"
    )


def test_hashing_needs_a_key_and_a_missing_key_refuses_batches_rather_than_store_them(
    version, personas, settings
):
    settings.MONITORING_HASH_KEY = ""
    refused = set_policy(personas.owner, hashed_columns=["region"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "hash_key_missing"
    settings.MONITORING_HASH_KEY = KEY
    assert set_policy(personas.owner, hashed_columns=["region"]).status_code == 200
    settings.MONITORING_HASH_KEY = ""  # the key vanished from the environment
    response = client_for(personas.bot).post(
        "/api/v1/models/credit/versions/1/predictions/",
        {
            "batch_id": "b1",
            "columns": predictions(20, seed=1).astype({"timestamp": str}).to_dict("list"),
        },
        format="json",
    )
    assert response.status_code == 503 and response.json()["error"]["code"] == "hash_key_missing"
    assert not PredictionBatch.objects.exists()


def test_only_a_manager_sets_the_data_policy_and_every_change_is_audited(version, personas):
    assert client_for(personas.outsider).get("/api/v1/models/credit/data-policy").status_code == 404
    shown = client_for(personas.viewer).get("/api/v1/models/credit/data-policy").json()
    assert shown["retention_days"] is None and shown["effective_retention_days"] == 365
    assert set_policy(personas.bot, retention_days=30).status_code == 403
    for body, code in (
        ({"hashed_columns": ["regoin"]}, "unknown_columns"),
        ({"hashed_columns": ["request_id"]}, "invalid"),
        ({"hashed_columns": ["region"], "dropped_columns": ["region"]}, "invalid"),
        ({"retention_days": 0}, "invalid"),
    ):
        answer = set_policy(personas.owner, **body)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == code, body
    response = set_policy(personas.owner, retention_days=30, hashed_columns=["region"])
    assert response.status_code == 200
    assert response.json()["effective_retention_days"] == 30
    event = AuditEvent.objects.get(action="monitoring.data_policy.updated")
    assert event.actor == "owner" and event.before is None
    assert event.after["hashed_columns"] == ["region"] and event.after["retention_days"] == 30


# --- drift and the dashboard on a hashed column ----------------------------------------------


@pytest.mark.parametrize("method", ["rows", "summary"])
def test_drift_on_a_hashed_column_is_found_when_its_distribution_shifts_and_only_then(
    version, personas, method
):
    assert set_policy(personas.owner, hashed_columns=["region"]).status_code == 200
    monitor = services.monitor_create(
        actor=personas.owner,
        model=version.registered_model,
        version=version,
        name="main",
        checks=["drift"],
        drift_method=method,
        min_rows=50,
    )
    same = predictions(2000, seed=5, prefix="a")
    stored = ingest(version, personas.bot, same, "same")
    assert set(stored.summary["columns"]["region"]["counts"]) == {mac("region", r) for r in REGIONS}
    steady = run_check(monitor)
    assert column(steady, "region")["drifted"] is False

    shifted = predictions(
        2000, seed=6, regions=[0.1, 0.2, 0.3, 0.4], prefix="b", start="2026-01-01T12:00:00"
    )
    ingest(version, personas.bot, shifted, "shifted")
    moved = run_check(monitor, END + dt.timedelta(hours=1))  # the shifted batch only
    hashed = column(moved, "region")
    assert hashed["drifted"] is True
    # Hashing relabels categories one to one: the statistics equal those of the raw values.
    training = frame_of(3000, seed=0)
    raw = drift.compare(training[["region"]], shifted[["region"]]).columns[0]
    assert hashed["test"] == raw.test and hashed["psi"] == pytest.approx(raw.psi)
    assert hashed["p_value"] == pytest.approx(raw.p_value)


def test_the_dashboard_charts_a_hashed_column_by_its_hashes(version, personas, client):
    set_policy(personas.owner, hashed_columns=["region"])
    monitor = services.monitor_create(
        actor=personas.owner,
        model=version.registered_model,
        version=version,
        name="main",
        checks=["drift"],
        min_rows=50,
    )
    ingest(version, personas.bot, predictions(500, seed=5), "b1")
    run_check(monitor)
    client.force_login(personas.viewer)
    page = client.get("/monitoring/models/credit/?feature=region")
    assert page.status_code == 200
    text = page.content.decode()
    assert mac("region", "north") in text and '"north"' not in text


def test_a_rule_changed_after_batches_exist_applies_to_new_batches_only(version, personas):
    monitor = services.monitor_create(
        actor=personas.owner,
        model=version.registered_model,
        version=version,
        name="main",
        checks=["drift"],
        drift_method="summary",
        min_rows=50,
    )
    before = ingest(version, personas.bot, predictions(500, seed=1, prefix="a"), "before")
    set_policy(personas.owner, hashed_columns=["region"])
    ingest(version, personas.bot, predictions(500, seed=2, prefix="b"), "after")
    assert stored_table(before).column("region").to_pylist()[0] in REGIONS
    run = run_check(monitor)
    assert run.drift["status"] == "ok" and run.drift["left_out_batches"] == 1
    assert column(run, "region")["drifted"] is False


# --- retention ---------------------------------------------------------------------------


def age(batch: Any, days: int) -> None:
    type(batch).objects.filter(pk=batch.pk).update(created_at=NOW - dt.timedelta(days=days))


def labels(model: Any, actor: Any, ids: list[str], batch_id: str) -> LabelBatch:
    table = pa.table({"request_id": ids, "label": [1] * len(ids)})
    return services.label_batch_ingest(actor=actor, model=model, batch_id=batch_id, table=table)[0]


def test_the_sweep_deletes_expired_batches_their_files_and_summaries_with_an_audit_event(
    version, personas, django_capture_on_commit_callbacks
):
    from config.celery import app

    assert any(
        entry["task"] == "monitoring.tasks.retention_sweep"
        for entry in app.conf.beat_schedule.values()
    )
    old = ingest(version, personas.bot, predictions(100, seed=1, prefix="a"), "old")
    twin = ingest(version, personas.bot, predictions(100, seed=1, prefix="a"), "old-again")
    recent = ingest(version, personas.bot, predictions(100, seed=2, prefix="b"), "recent")
    old_labels = labels(version.registered_model, personas.bot, ["a1", "a2"], "labels-old")
    age(old, 400)
    age(old_labels, 400)
    age(twin, 10)  # same content, so the same file: it must survive the old one
    age(recent, 10)
    storage = blob_storage("batches")

    with django_capture_on_commit_callbacks(execute=True):  # files go after commit
        totals = retention.retention_sweep(now=NOW)

    assert totals == {"models": 1, "prediction_batches": 1, "label_batches": 1}
    assert set(PredictionBatch.objects.values_list("batch_id", flat=True)) == {
        "old-again",
        "recent",
    }
    assert not LabelBatch.objects.exists()
    assert storage.exists(twin.storage_key) and not storage.exists(old_labels.storage_key)
    event = AuditEvent.objects.get(action="monitoring.retention.deleted")
    assert event.actor == "system:monitoring.retention" and event.object_repr == "credit"
    assert event.after["prediction_batch_ids"] == ["v1:old"]
    assert event.after["label_batch_ids"] == ["labels-old"]
    # A shorter period for this model: the 10-day-old batches go too, and their file.
    set_policy(personas.owner, retention_days=7)
    with django_capture_on_commit_callbacks(execute=True):
        retention.retention_sweep(now=NOW)
    assert not PredictionBatch.objects.exists() and not storage.exists(twin.storage_key)


def test_the_sweep_keeps_what_an_alert_an_unfinished_check_or_an_open_review_still_needs(
    version, personas
):
    model = version.registered_model
    alerted = services.monitor_create(
        actor=personas.owner,
        model=model,
        version=version,
        name="alerted",
        checks=["drift"],
        min_rows=50,
        thresholds={"drift_share": 0.2},  # region alone (1 of 4) opens the alert
    )
    in_alert = ingest(
        version,
        personas.bot,
        predictions(300, seed=6, regions=[0.1, 0.2, 0.3, 0.4], prefix="a"),
        "in-alert",
    )
    label_for_alert = labels(model, personas.bot, ["a1"], "labels-for-alert")
    run = run_check(alerted)
    alert = Alert.objects.get(monitor=alerted)
    assert alert.first_run == run and alert.status == "open"

    later = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    queued_monitor = services.monitor_create(
        actor=personas.owner,
        model=model,
        version=version,
        name="queued",
        checks=["drift"],
        min_rows=50,
    )
    in_queue = ingest(
        version,
        personas.bot,
        predictions(100, seed=2, prefix="q", start="2026-02-28T12:00:00"),
        "in-queue",
    )
    queued, _ = services.check_run_request(
        actor=personas.owner, monitor=queued_monitor, window_end=later
    )
    assert CheckRun.objects.get(pk=queued.pk).status == JobStatus.QUEUED
    free = ingest(
        version,
        personas.bot,
        predictions(100, seed=3, prefix="f", start="2025-06-01T00:00:00"),
        "free",
    )
    for batch in (in_alert, label_for_alert, in_queue, free):
        age(batch, 400)

    retention.retention_sweep(now=NOW)
    kept = set(PredictionBatch.objects.values_list("batch_id", flat=True))
    assert kept == {"in-alert", "in-queue"}
    assert LabelBatch.objects.filter(pk=label_for_alert.pk).exists()
    event = AuditEvent.objects.get(action="monitoring.retention.deleted")
    assert event.after["kept_for_holds"] == {"prediction_batches": 2, "label_batches": 1}

    # Resolved and finished: nothing holds them any more...
    services.alert_resolve(actor=personas.owner, alert=alert, comment="retrained")
    CheckRun.objects.filter(pk=queued.pk).update(status=JobStatus.FAILED)
    # ...except an open review of the version, which keeps all of its batches.
    grant(model, personas.bot, "contributor")
    reviews.review_submit(actor=personas.bot, version=version)
    retention.retention_sweep(now=NOW)
    assert set(PredictionBatch.objects.values_list("batch_id", flat=True)) == {
        "in-alert",
        "in-queue",
    }
    # Rejected: the review is closed, and the sweep deletes them.
    compliance = grant(model, personas.compliance, "approver")
    reviews.signoff_create(
        actor=compliance,
        version=version,
        password="correct-horse-9",
        decision="reject",
        meaning="reviewed",
    )
    retention.retention_sweep(now=NOW)
    assert not PredictionBatch.objects.exists()


def test_without_debug_a_weak_hash_key_refuses_to_start() -> None:
    import secrets

    from tests.common.test_settings import run_django

    base = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "mg.example"}
    weak = run_django({**base, "MONITORING_HASH_KEY": "short"}, "check")
    assert weak.returncode != 0 and "MONITORING_HASH_KEY" in weak.stderr
    strong = run_django({**base, "MONITORING_HASH_KEY": secrets.token_urlsafe(32)}, "check")
    assert strong.returncode == 0, strong.stderr[-2000:]
