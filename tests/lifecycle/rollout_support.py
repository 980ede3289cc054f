"""Helpers for rollout tests: candidate models that predict differently, and served
traffic logged the way the serving processes log it."""

from __future__ import annotations

import json
import time
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

import numpy as np

from lifecycle import prediction_log, scoring, serving, serving_logs
from lifecycle.models import Deployment
from tests.conftest import FEATURES, ready_version, training_frame
from tests.lifecycle.deploy_support import fresh, run_deployment


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


@cache
def planned_classifier_bytes() -> bytes:
    """A pipeline that begins with a ColumnTransformer: served through its column plan
    (``lifecycle.pipeline_plan``), which takes typed columns, not a frame."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = training_frame()
    # A part of one column (``score``) as well: the plan reshapes that column's array.
    prep = ColumnTransformer(
        [("num", StandardScaler(), ["age", "income"]), ("score", StandardScaler(), ["score"])]
    )
    pipeline = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=200))])
    return sio.dumps(pipeline.fit(frame[FEATURES], frame["label"]))


def planned_version(model: Any, personas: Any) -> Any:
    return ready_version(model, personas.bot, artifact=planned_classifier_bytes())


def shifted_version(model: Any, personas: Any) -> Any:
    return ready_version(model, personas.bot, artifact=shifted_classifier_bytes())


def flipped_version(model: Any, personas: Any) -> Any:
    return ready_version(model, personas.bot, artifact=flipped_classifier_bytes())


def rows(n: int, seed: int = 0) -> Any:
    return training_frame(n, seed=seed)[FEATURES]


# A model that reads a sensitive attribute: ``sex`` (0 or 1) beside the usual inputs.
SEX_FEATURES = [*FEATURES, "sex"]
SEX_SIGNATURE = [
    {"name": name, "dtype": "int64" if name == "sex" else "float64"} for name in SEX_FEATURES
]


def sex_frame(n: int = 200, seed: int = 0) -> Any:
    """``training_frame`` (same labels for the same seed) with a ``sex`` column."""
    frame = training_frame(n, seed=seed)
    frame["sex"] = np.random.default_rng(1000 + seed).integers(0, 2, n).astype("int64")
    return frame


@cache
def sex_classifier_bytes(unfair: bool = False) -> bytes:
    """Fair: learned the labels (sex plays no part). Unfair: learned labels that deny
    every positive to ``sex == 1``, so it answers 0 for that group."""
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    frame = sex_frame(400)
    labels = frame["label"] * (1 - frame["sex"]) if unfair else frame["label"]
    return sio.dumps(LogisticRegression(max_iter=500).fit(frame[SEX_FEATURES], labels))


def sex_version(model: Any, personas: Any, *, unfair: bool = False) -> Any:
    return ready_version(
        model,
        personas.bot,
        artifact=sex_classifier_bytes(unfair),
        signature_inputs=SEX_SIGNATURE,
    )


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
    frame: Any = None,
) -> None:
    """``n`` requests of one row answered by ``version`` (really predicted), ``errors`` of
    them refused as prediction_failed, logged and ingested as a serving process would;
    ``frame``: the requests' rows (else ``rows(n, seed)``)."""
    model = serving.load_version(version.pk)
    frame = rows(n, seed) if frame is None else frame
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
            spec.name: scoring.to_array([frame[spec.name].iloc[i].item()], spec)
            for spec in model.specs
        }
        predictions, proba = model.predict(arrays)
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


def post_labels(model: Any, actor: Any, request_ids: list[str], labels: list[Any], name: str):
    """Labels for these requests, posted as a pipeline posts them (monitoring's service)."""
    import pyarrow as pa

    from monitoring.services import label_batch_ingest

    table = pa.table({"request_id": request_ids, "label": labels})
    label_batch_ingest(actor=actor, model=model, batch_id=f"labels-{name}", table=table)


def served_and_labelled(
    environment: Any, version: Any, model: Any, actor: Any, n: int, *, seed: int, prefix: str
) -> Any:
    """``n`` requests of ``sex_frame(n, seed)`` answered by ``version`` and their labels;
    returns the frame (request ``i`` is ``{prefix}-{seed}-{i}``)."""
    frame = sex_frame(n, seed)
    log_traffic(environment, version, n, seed=seed, prefix=prefix, frame=frame)
    post_labels(
        model,
        actor,
        [f"{prefix}-{seed}-{i}" for i in range(n)],
        frame["label"].tolist(),
        f"{prefix}-{seed}",
    )
    return frame


def start(env: dict[str, Any], personas: Any, version: Any, strategy: str, **plan: Any) -> Any:
    """The owner deploys ``version`` to ``env``'s production with ``strategy`` and ``plan``;
    the deployment job run in-process (replay included) as the worker runs it."""
    from lifecycle import deployments

    deployment = deployments.deployment_start(
        actor=personas.owner,
        environment=fresh(env["production"]),
        version=version,
        strategy=strategy,
        plan=plan,
    )
    return run_deployment(deployment)


def three(x: float) -> str:
    """As the page shows a figure (Django's floatformat:3 rounds half up)."""
    return str(Decimal(repr(x)).quantize(Decimal("0.001"), ROUND_HALF_UP))
