"""Helpers for retraining tests: a parent version with its training data, runs in-process."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import skops.io as sio

from common.jobs import job_claim
from lifecycle import retraining
from lifecycle.models import RetrainingRun
from lifecycle.tasks import heavy_retrain
from monitoring import services as monitoring_services
from registry import services as registry_services
from tests.conftest import FEATURES, parquet_bytes, training_frame, validate


def upload_dataset(
    model: Any, actor: Any, frame: pd.DataFrame, name: str = "training", role: str = "training"
) -> Any:
    return registry_services.dataset_upload(
        actor=actor,
        model=model,
        name=name,
        role=role,
        upload=io.BytesIO(parquet_bytes(frame)),
        filename=f"{name}.parquet",
    )


def fitted_bytes(estimator: Any, frame: pd.DataFrame | None = None) -> bytes:
    frame = training_frame(400, seed=1) if frame is None else frame
    return sio.dumps(estimator.fit(frame[FEATURES], frame["label"]))


@cache
def weak_bytes() -> bytes:
    """A classifier regularised into predicting the majority class (a weak challenger)."""
    from sklearn.linear_model import LogisticRegression

    return fitted_bytes(LogisticRegression(C=1e-6))


def execute(run: RetrainingRun) -> RetrainingRun:
    """The worker's half, in-process (the task: claim, run, fail)."""
    heavy_retrain.run(run.pk)
    return RetrainingRun.objects.select_related("version", "parent").get(pk=run.pk)


def complete(run: RetrainingRun) -> RetrainingRun:
    """Run it, have the registry validate the candidate, then the follow-up (as the event)."""
    run = execute(run)
    assert run.status == "succeeded", run.error
    validate(run.version)
    retraining.retraining_follow_up(version_id=run.version_id)
    return RetrainingRun.objects.select_related("version").get(pk=run.pk)


def claim(run: RetrainingRun) -> RetrainingRun:
    job = job_claim(RetrainingRun, run.pk)
    assert job is not None
    return job


def post_traffic(
    version: Any, actor: Any, *, n: int = 600, seed: int = 11, flip: bool = False, start: str
) -> pd.DataFrame:
    """Prediction rows (with features and time) and their labels, through monitoring."""
    rng = np.random.default_rng(seed)
    frame = training_frame(n, seed=seed)
    if flip:  # the concept moved: the label is now the opposite of what it was
        frame["label"] = 1 - frame["label"]
    rows = frame[FEATURES].copy()
    rows.insert(0, "request_id", [f"{seed}-{i}" for i in range(n)])
    rows.insert(1, "timestamp", pd.date_range(start, periods=n, freq="s", tz="UTC"))
    rows["prediction"] = rng.integers(0, 2, n)
    monitoring_services.prediction_batch_ingest(
        actor=actor,
        version=version,
        batch_id=f"batch-{seed}",
        table=pa.Table.from_pandas(rows, preserve_index=False),
    )
    labels = pd.DataFrame({"request_id": rows["request_id"], "label": frame["label"]})
    monitoring_services.label_batch_ingest(
        actor=actor,
        model=version.registered_model,
        batch_id=f"labels-{seed}",
        table=pa.Table.from_pandas(labels, preserve_index=False),
    )
    return frame


__all__ = [
    "claim",
    "complete",
    "execute",
    "fitted_bytes",
    "post_traffic",
    "upload_dataset",
    "weak_bytes",
]
