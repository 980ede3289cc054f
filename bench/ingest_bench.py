"""Prediction ingestion throughput and check-run time (prints figures; never a test).

    .venv/bin/python bench/ingest_bench.py [--rows 1000000] [--columns 20]

1. sets up a throw-away SQLite database and artifact folder, a model with a
   ready version (LogisticRegression on ``--columns`` float features) and its
   training dataset (50,000 rows), whose reference profile is built up front;
2. writes a ``--rows`` x ``--columns`` Parquet batch (plus request_id,
   timestamp, prediction, probability) and posts it end to end through the
   HTTP stack (Django test client: multipart upload streamed to a temporary file
   by the limited upload handler, the API view, validation against the
   signature, the per-batch summary on the reference bins, Parquet written to
   the artifact storage, the batch row and its audit event);
3. posts the same table once more straight to the service (no HTTP);
4. ingests 30 more batches of 20,000 rows and times checks over the window
   (2.6 million rows): data drift and prediction drift from the merged summaries
   and from the raw rows (exact KS), then all four checks (labels joined by
   request id for label drift and performance).

Also prints the peak resident memory the HTTP upload added (ru_maxrss).

Target: >= 200,000 feature rows per second through the upload path.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
os.environ.update(
    {
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{WORK / 'bench.sqlite3'}",
        "ARTIFACT_ROOT": str(WORK / "artifacts"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "testserver,localhost",
    }
)

import django  # noqa: E402

django.setup()

import datetime as dt  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402


def frame(rows: int, columns: int, seed: int, prefix: str, start: dt.datetime) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {
        "request_id": pa.array([f"{prefix}{i}" for i in range(rows)]),
        "timestamp": pd.date_range(start, periods=rows, freq="50ms", tz="UTC"),
    }
    out = pd.DataFrame(data)
    values = rng.normal(size=(rows, columns))
    for j in range(columns):
        out[f"f{j}"] = values[:, j]
    out["probability"] = rng.random(rows)
    out["prediction"] = (out["probability"] > 0.5).astype("int64")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    args = parser.parse_args()

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from common.jobs import job_claim
    from monitoring import checks as mon_checks
    from monitoring import profiles as mon_profiles
    from monitoring import services as mon
    from monitoring.models import CheckRun, PredictionBatch
    from registry import services as reg
    from registry.models import RegistrationJob

    call_command("migrate", verbosity=0)
    owner = User.objects.create_superuser("bench", "bench@example.com", "bench-pass-123")
    model = reg.registered_model_create(
        actor=owner, name="bench", task="classification", risk_tier="low", team=None
    )
    features = [f"f{j}" for j in range(args.columns)]
    train = frame(50_000, args.columns, 0, "t", dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    train["label"] = train["prediction"]
    buffer = io.BytesIO()
    train[[*features, "label"]].to_parquet(buffer, index=False)
    dataset = reg.dataset_upload(
        actor=owner,
        model=model,
        name="train",
        role="training",
        upload=buffer,
        filename="train.parquet",
    )
    estimator = LogisticRegression(max_iter=200).fit(train[features], train["label"])
    version = reg.model_version_register(
        actor=owner,
        model=model,
        artifact=io.BytesIO(sio.dumps(estimator)),
        training_dataset=dataset,
        target_column="label",
        metrics={"accuracy": 0.9},
        signature_inputs=[{"name": f, "dtype": "float64"} for f in features],
    )
    version = reg.model_version_validate(
        job=job_claim(RegistrationJob, version.registration_job.pk)
    )
    assert version.status == "ready", version.status_reason
    started = time.perf_counter()
    mon_profiles.reference_profile_ensure(actor=owner, version=version)
    print(
        f"reference profile (50,000 rows x {args.columns}): {time.perf_counter() - started:.2f} s"
    )

    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=23)
    big = frame(args.rows, args.columns, 1, "b", start)
    path = WORK / "batch.parquet"
    big.to_parquet(path, index=False)
    size_mb = path.stat().st_size / 1e6
    client = Client()
    client.force_login(owner)
    url = f"/api/v1/models/bench/versions/{version.number}/predictions/"
    in_memory_mb = big.memory_usage(deep=True).sum() / 1e6
    del big
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(path, "rb") as fh:
        started = time.perf_counter()
        response = client.post(url, {"batch_id": "http-1", "file": fh})
        elapsed = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert response.status_code == 201, response.content[:500]
    print(
        f"HTTP upload: {args.rows:,} rows x {args.columns} features ({size_mb:.0f} MB Parquet) "
        f"in {elapsed:.2f} s = {args.rows / elapsed:,.0f} rows/s; peak RSS +"
        f"{max(0.0, peak_after - peak_before):,.0f} MB (the batch is {in_memory_mb:,.0f} MB "
        "as a DataFrame)"
    )
    table = pq.read_table(path)
    started = time.perf_counter()
    mon.prediction_batch_ingest(actor=owner, version=version, batch_id="svc-1", table=table)
    elapsed = time.perf_counter() - started
    print(f"service only (table already read): {elapsed:.2f} s = {args.rows / elapsed:,.0f} rows/s")

    for i in range(30):
        small = frame(20_000, args.columns, 10 + i, f"s{i}-", start + dt.timedelta(minutes=20 * i))
        mon.prediction_batch_ingest(
            actor=owner,
            version=version,
            batch_id=f"s{i}",
            table=pa.Table.from_pandas(small, preserve_index=False),
        )
        labels = small[["request_id", "prediction"]].rename(columns={"prediction": "label"})
        mon.label_batch_ingest(
            actor=owner,
            model=model,
            batch_id=f"l{i}",
            table=pa.Table.from_pandas(labels, preserve_index=False),
        )
    monitor = mon.monitor_create(actor=owner, model=model, version=version, name="bench")
    plans = [
        ("summary", ["drift"]),
        ("summary", ["prediction_drift"]),
        ("rows", ["drift"]),
        ("rows", ["prediction_drift"]),
        ("summary", ["drift", "prediction_drift", "label_drift", "performance"]),
    ]
    for i, (method, checks) in enumerate(plans):
        monitor.checks, monitor.drift_method = checks, method
        monitor.save(update_fields=["checks", "drift_method"])
        run, _ = mon.check_run_request(
            actor=owner,
            monitor=monitor,
            window_end=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=i + 1),
        )
        started = time.perf_counter()
        run = mon_checks.check_run_execute(job=job_claim(CheckRun, run.pk))
        elapsed = time.perf_counter() - started
        batches = PredictionBatch.objects.filter(version=version).count()
        print(
            f"check run {'+'.join(checks)} ({method}): {batches} batches, {run.row_count:,} "
            f"rows, {run.labelled_count or 0:,} labelled: {elapsed:.2f} s"
        )


if __name__ == "__main__":
    main()
