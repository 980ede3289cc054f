"""Helpers for tests of evidence producers: capture what they file, set policy thresholds."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from common import evidence
from registry import services as registry_services
from tests.conftest import csv_bytes, training_frame


@pytest.fixture
def filed() -> Iterator[list[evidence.EvidenceItem]]:
    """Every EvidenceItem produced during the test, in order."""
    items: list[evidence.EvidenceItem] = []

    def recorder(*, actor: Any, item: evidence.EvidenceItem) -> None:
        items.append(item)

    evidence.register_evidence_recorder(recorder)
    yield items
    evidence._recorders.remove(recorder)


@pytest.fixture
def policy() -> Iterator[dict[str, dict[str, Any]]]:
    """Thresholds the (stand-in) approval policy answers, by evidence kind."""
    answers: dict[str, dict[str, Any]] = {}

    def provider(version: Any, kind: str) -> dict[str, Any] | None:
        return answers.get(kind)

    evidence._threshold_providers.insert(0, provider)
    yield answers
    evidence._threshold_providers.remove(provider)


def audit_frame(n: int = 2000, seed: int = 3) -> pd.DataFrame:
    """The registry's test data plus sensitive columns with a known bias.

    ``sex == "F"`` rows have lower scores, so a model trained on the score
    selects them less often; ``age_band`` has a tiny "75+" group (5 rows).
    """
    rng = np.random.default_rng(seed)
    frame = training_frame(n, seed=seed)
    frame["sex"] = np.where(rng.random(n) < np.where(frame["score"] < 0.5, 0.75, 0.25), "F", "M")
    bands = rng.choice(["18-30", "31-50", "51-75"], size=n)
    bands[:5] = "75+"
    frame["age_band"] = bands
    return frame


def upload(model: Any, actor: Any, frame: pd.DataFrame, name: str = "audit-data") -> Any:
    return registry_services.dataset_upload(
        actor=actor,
        model=model,
        name=name,
        role="evaluation",
        upload=io.BytesIO(csv_bytes(frame)),
        filename=f"{name}.csv",
    )


__all__ = ["audit_frame", "filed", "policy", "upload"]
