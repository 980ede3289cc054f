"""Fixtures for monitoring tests: a ready classifier with a training dataset."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from registry import services as registry_services
from tests.conftest import FEATURES, parquet_bytes, ready_version, training_frame


def upload_training(model: Any, actor: Any, frame: pd.DataFrame | None = None) -> Any:
    frame = training_frame(n=2000) if frame is None else frame
    return registry_services.dataset_upload(
        actor=actor,
        model=model,
        name="training",
        role="training",
        upload=io.BytesIO(parquet_bytes(frame)),
        filename="training.parquet",
        description="",
    )


def prediction_frame(
    n: int = 500,
    *,
    seed: int = 1,
    shift: float = 0.0,
    start: str = "2026-01-01T00:00:00",
    prefix: str = "r",
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "request_id": [f"{prefix}{i}" for i in range(n)],
            "timestamp": pd.date_range(start, periods=n, freq="s", tz="UTC"),
            "age": rng.normal(40 + shift * 10, 10, n).round(1),
            "income": rng.lognormal(10 + shift * 0.5, 0.5, n).round(2),
            "score": rng.random(n),
        }
    )
    frame["probability"] = rng.random(n)
    frame["prediction"] = (frame["probability"] > 0.5).astype("int64")
    return frame


@pytest.fixture
def monitored(model: Any, personas: Any) -> Any:
    """A ready version with its drift baseline, built in-process here as the worker
    builds it when a version becomes ready (the ``ProfileBuild`` job)."""
    from monitoring import services

    dataset = upload_training(model, personas.owner)
    version = ready_version(
        model,
        personas.owner,
        training_dataset=dataset,
        target_column="label",
        metrics={"accuracy": 0.9, "f1": 0.85},
    )
    services.reference_profile_ensure(actor=services.WORKER, version=version)
    return version


__all__ = ["FEATURES", "prediction_frame", "upload_training"]
