"""Helpers for rollout tests: candidate models that predict differently, and served
traffic logged the way the serving processes log it."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import numpy as np

from lifecycle import prediction_log, scoring, serving, serving_logs
from lifecycle.models import Deployment
from tests.conftest import FEATURES, ready_version, training_frame


@cache
def flipped_classifier_bytes() -> bytes:
    """A classifier that learned the opposite labels: healthy over HTTP, wrong in its answers
    (its probabilities are roughly 1 - the stable one's)."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    frame = training_frame()
    return sio.dumps(LogisticRegression(max_iter=200).fit(frame[FEATURES], 1 - frame["label"]))


@cache
def shifted_classifier_bytes() -> bytes:
    """A classifier trained where most cases were positive: every answer valid, its
    positive-class probabilities shifted well above the stable model's."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    frame = training_frame()
    labels = (frame["score"] > 0.12).astype("int64")
    return sio.dumps(LogisticRegression(max_iter=200).fit(frame[FEATURES], labels))


def shifted_version(model: Any, personas: Any) -> Any:
    return ready_version(model, personas.bot, artifact=shifted_classifier_bytes())


def flipped_version(model: Any, personas: Any) -> Any:
    return ready_version(model, personas.bot, artifact=flipped_classifier_bytes())


def rows(n: int, seed: int = 0) -> Any:
    return training_frame(n, seed=seed)[FEATURES]


def log_traffic(
    environment: Any,
    version: Any,
    n: int,
    *,
    seed: int = 0,
    errors: int = 0,
    shadow: bool = False,
    prefix: str = "r",
    user_id: int | None = None,
) -> None:
    """``n`` requests of one row answered by ``version`` (really predicted), ``errors`` of
    them refused as prediction_failed, logged and ingested as a serving process would."""
    model = serving.load_version(version.pk)
    frame = rows(n, seed)
    log = prediction_log.PredictionLog()
    for i in range(n):
        request_id = f"{prefix}-{seed}-{i}"
        if i < errors:
            log.record_error(
                environment_id=environment.pk,
                version_id=version.pk,
                user_id=user_id,
                request_id=request_id,
                latency=0.002,
                status=422,
                code="prediction_failed",
                shadow=shadow,
            )
            continue
        arrays = {
            spec.name: scoring.to_array([frame.iloc[i][spec.name]], spec) for spec in model.specs
        }
        predictions, proba = model.predict(scoring.to_frame(arrays))
        log.record(
            environment_id=environment.pk,
            version_id=version.pk,
            user_id=user_id,
            request_id=request_id,
            latency=0.002 + 0.001 * np.random.default_rng(i).random(),
            features=arrays,
            predictions=predictions,
            probability=proba[:, 1],
            shadow=shadow,
        )
    for message in log._take():
        serving_logs.serving_log_ingest(message=json.loads(json.dumps(message)))


def wait_until_due(deployment: Deployment) -> None:
    deployment.refresh_from_db()
    assert deployment.next_check_at is not None, deployment.state
    from django.utils import timezone

    delay = (deployment.next_check_at - timezone.now()).total_seconds()
    if delay > 0:
        time.sleep(delay + 0.05)
