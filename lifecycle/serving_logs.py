"""Prediction logging, the worker's half: one hand-off message → stored batches.

``serving_log_ingest`` files one message of a serving process
(``lifecycle.prediction_log``): the successful rows become a monitoring
``PredictionBatch`` of the version (through monitoring's own
``prediction_batch_ingest``, so the dashboards, drift checks and label join
work on served traffic unchanged), and every row, refused requests included,
becomes a ``ServingLogBatch`` of the environment (the log an operator filters
and exports). Both are keyed by the message's batch id, so a redelivered
message changes nothing.

Also here: reading the log back (filters, export) for the selectors.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from common.audit import SystemActor
from common.errors import DomainError
from common.storage import cached_blob_path, store_blob
from lifecycle.models import Environment, ServingLogBatch
from registry.models import ModelVersion

logger = logging.getLogger(__name__)
SERVING = SystemActor("lifecycle.serving")
META_COLUMNS = (
    "request_id",
    "timestamp",
    "version",
    "shadow",
    "latency_ms",
    "status",
    "error_code",
    "error_column",
    "prediction",
    "probability",
)


def _times(seconds: list[float]) -> pa.Array:
    micros = (np.asarray(seconds, dtype=np.float64) * 1_000_000).astype("int64")
    return pa.array(micros, type=pa.timestamp("us", tz="UTC"))


def _feature_name(name: str) -> str:
    return f"feature:{name}" if name in META_COLUMNS else name


def monitoring_table(message: dict[str, Any]) -> pa.Table | None:
    """The successful rows, in monitoring's prediction batch columns."""
    ok = message["ok"]
    if not ok["request_id"]:
        return None
    columns: dict[str, Any] = {
        "request_id": pa.array(ok["request_id"], type=pa.string()),
        "timestamp": _times(ok["at"]),
    }
    for name, values in ok["features"].items():
        columns[name] = pa.array(values, from_pandas=True)
    columns["prediction"] = pa.array(ok["prediction"], from_pandas=True)
    if any(p is not None for p in ok["probability"]):
        columns["probability"] = pa.array(ok["probability"], type=pa.float64(), from_pandas=True)
    return pa.table(columns)


def _dedupe(table: pa.Table) -> pa.Table:
    """One row per request id (a caller's retry logged twice keeps its last answer)."""
    ids = table.column("request_id").to_pylist()
    if len(set(ids)) == len(ids):
        return table
    last = {rid: i for i, rid in enumerate(ids)}
    return table.take(pa.array(sorted(last.values())))


def log_table(message: dict[str, Any], number: int) -> pa.Table:
    """Every row of the message, successful and refused, with the log's columns."""
    ok, errors = message["ok"], message["errors"]
    n_ok, n_err = len(ok["request_id"]), len(errors["request_id"])
    total = n_ok + n_err
    columns: dict[str, Any] = {
        "request_id": pa.array(ok["request_id"] + errors["request_id"], type=pa.string()),
        "timestamp": _times(ok["at"] + errors["at"]),
        "version": pa.array([number] * total, type=pa.int64()),
        "shadow": pa.array(ok["shadow"] + errors["shadow"], type=pa.bool_()),
        "latency_ms": pa.array(ok["latency_ms"] + errors["latency_ms"], type=pa.float64()),
        "status": pa.array([200] * n_ok + errors["status"], type=pa.int32()),
        "error_code": pa.array([""] * n_ok + errors["code"], type=pa.string()),
        "error_column": pa.array([""] * n_ok + errors["column"], type=pa.string()),
        "prediction": pa.array(ok["prediction"] + [None] * n_err, from_pandas=True),
        "probability": pa.array(
            ok["probability"] + [None] * n_err, type=pa.float64(), from_pandas=True
        ),
    }
    for name, values in ok["features"].items():
        columns[_feature_name(name)] = pa.array(values + [None] * n_err, from_pandas=True)
    return pa.table(columns)


def _summary(message: dict[str, Any]) -> dict[str, Any]:
    errors = message["errors"]
    by_code: dict[str, Counter] = defaultdict(Counter)
    for code, column in zip(errors["code"], errors["column"], strict=True):
        by_code[code][column] += 1
    latencies = np.asarray(message["ok"]["latency_ms"] + errors["latency_ms"], dtype=np.float64)
    answered = int(message.get("ok_requests", len(message["ok"]["request_id"])))
    status = Counter(str(s) for s in errors["status"])
    if answered:
        status["200"] = answered
    summary: dict[str, Any] = {
        "requests": answered + len(errors["request_id"]),
        "rows": len(message["ok"]["request_id"]),
        "errors": {code: dict(columns) for code, columns in by_code.items()},
        "status": dict(status),
    }
    if latencies.size:
        summary["latency_ms"] = {
            "p50": float(np.percentile(latencies, 50)),
            "p99": float(np.percentile(latencies, 99)),
            "max": float(latencies.max()),
            "mean": float(latencies.mean()),
        }
    return summary


def _store(table: pa.Table) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "log.parquet")
        pq.write_table(table, path, compression="zstd")
        with open(path, "rb") as fh:
            key, digest, _size = store_blob(
                "batches", fh
            )  # parquet, content-addressed like monitoring's
    return key, digest


def _creator(message: dict[str, Any], version: ModelVersion) -> Any:
    user = get_user_model().objects.filter(pk=message.get("user_id")).first()
    return user or version.registered_model.owner


def serving_log_ingest(*, message: dict[str, Any]) -> ServingLogBatch | None:
    """File one hand-off message (idempotent by its batch id); None if there is nothing to file."""
    from monitoring.services import prediction_batch_ingest

    batch_id = str(message["batch_id"])[:100]
    environment = (
        Environment.objects.select_related("registered_model")
        .filter(pk=message["environment_id"])
        .first()
    )
    version = (
        ModelVersion.objects.select_related("registered_model")
        .filter(pk=message["version_id"])
        .first()
    )
    if environment is None or version is None:
        logger.warning("serving log %s: its environment or version is gone", batch_id)
        return None
    existing = ServingLogBatch.objects.filter(environment=environment, batch_id=batch_id).first()
    if existing is not None:
        return existing
    summary = _summary(message)
    prediction_batch = None
    table = monitoring_table(message)
    if table is not None:
        try:
            prediction_batch, _created = prediction_batch_ingest(
                actor=SERVING,
                version=version,
                batch_id=batch_id,
                table=_dedupe(table),
                created_by=_creator(message, version),
            )
        except DomainError as exc:
            # Kept in the serving log all the same; monitoring says why it refused.
            logger.warning("serving log %s: monitoring refused the batch: %s", batch_id, exc)
            summary["monitoring_refused"] = exc.message
    log = log_table(message, version.number)
    key, digest = _store(log)
    stamps = pc.min_max(log.column("timestamp"))
    shadow = pc.sum(log.column("shadow").cast(pa.int64())).as_py() or 0
    try:
        with transaction.atomic():
            return ServingLogBatch.objects.create(
                environment=environment,
                version=version,
                batch_id=batch_id,
                storage_key=key,
                sha256=digest,
                row_count=log.num_rows,
                error_count=len(message["errors"]["request_id"]),
                shadow_count=int(shadow),
                first_at=stamps["min"].as_py(),
                last_at=stamps["max"].as_py(),
                summary=summary,
                prediction_batch=prediction_batch,
            )
    except IntegrityError:  # the same message, filed concurrently
        return ServingLogBatch.objects.get(environment=environment, batch_id=batch_id)


# --- reading the log back ---------------------------------------------------------------


def read_log(
    batches: list[ServingLogBatch],
    *,
    version: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    shadow: bool | None = None,
    error: bool | None = None,
    limit: int | None = None,
) -> pa.Table:
    """The rows of these log batches that pass the filters, oldest first."""
    tables = []
    rows = 0
    for batch in batches:
        with cached_blob_path(batch.storage_key) as path:
            table = pq.read_table(path)
        mask = pa.array([True] * table.num_rows)
        if version is not None:
            mask = pc.and_(mask, pc.equal(table.column("version"), version))
        if since is not None:
            mask = pc.and_(mask, pc.greater_equal(table.column("timestamp"), _utc(since)))
        if until is not None:
            mask = pc.and_(mask, pc.less(table.column("timestamp"), _utc(until)))
        if shadow is not None:
            mask = pc.and_(mask, pc.equal(table.column("shadow"), shadow))
        if error is not None:
            is_error = pc.not_equal(table.column("status"), 200)
            mask = pc.and_(mask, is_error if error else pc.invert(is_error))
        table = table.filter(mask)
        if table.num_rows:
            tables.append(table)
            rows += table.num_rows
        if limit is not None and rows >= limit:
            break
    if not tables:
        return pa.table({name: pa.array([], type=pa.string()) for name in META_COLUMNS})
    merged = pa.concat_tables(tables, promote_options="permissive")
    merged = merged.sort_by([("timestamp", "ascending")])
    return merged.slice(0, limit) if limit is not None else merged


def _utc(moment: datetime) -> pa.Scalar:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return pa.scalar(moment.astimezone(UTC), type=pa.timestamp("us", tz="UTC"))


def export_bytes(table: pa.Table, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, buffer, compression="zstd")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, buffer)
    return buffer.getvalue()
