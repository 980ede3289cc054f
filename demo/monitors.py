"""Demo state for the monitoring app, loaded by `manage.py demo` (idempotent).

credit: a daily monitor that follows ``credit@staging``; two weeks of prediction
batches sampled from its training data, where income and debt ratio drift from day 9
on, labels for every day, one check per day. The drift opens a data drift alert, and
the performance it costs (F1 and ROC AUC fall from one day to the next) opens a
performance alert: the monitor judges performance against the version's first week in
production (the default baseline), which the holdout score would never have shown.
diabetes: a daily monitor that follows ``diabetes@champion``, stable traffic (no alert).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.db import transaction
from django.utils import timezone

from common.jobs import job_claim
from common.storage import cached_blob_path
from monitoring import checks, profiles, services
from monitoring.models import CheckRun, Monitor
from registry.artifacts import load_estimator

DAYS = 14
DRIFT_FROM_DAY = 9
ROWS_PER_DAY = 2000


def _version_for(model: Any, alias: str) -> tuple[Any, str]:
    """The version behind ``alias`` and the alias to follow ("" when it does not exist:
    the newest ready version, watched as it is)."""
    found = model.aliases.filter(name=alias).select_related("version").first()
    if found is not None:
        return found.version, alias
    return model.versions.filter(status="ready").order_by("-number")[0], ""


def _traffic(version: Any, day: int, *, drift: bool, start: dt.datetime) -> tuple[Any, Any]:
    with cached_blob_path(version.training_dataset.storage_key) as path:
        train = pq.read_table(path).to_pandas()
    rng = np.random.default_rng(100 + day)
    sample = train.sample(ROWS_PER_DAY, replace=True, random_state=day).reset_index(drop=True)
    features = version.feature_names
    target = version.target_column
    if drift:
        for name in ("income", "debt_ratio"):
            if name in sample:
                sample[name] = sample[name] * (1.35 if name == "income" else 1.6)
    with cached_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    frame = sample[features].copy()
    frame.insert(0, "request_id", [f"{version.pk}-{day}-{i}" for i in range(len(sample))])
    frame.insert(
        1,
        "timestamp",
        [
            start + dt.timedelta(seconds=int(s))
            for s in np.sort(rng.integers(0, 86399, len(sample)))
        ],
    )
    frame["prediction"] = estimator.predict(sample[features])
    if hasattr(estimator, "predict_proba"):
        frame["probability"] = estimator.predict_proba(sample[features])[:, 1]
    labels = pd.DataFrame({"request_id": frame["request_id"], "label": sample[target]})
    return frame, labels


def _simulate(
    command: Any, users: dict[str, Any], model: Any, followed: tuple[Any, str], name: str
) -> None:
    version, alias = followed
    if Monitor.objects.filter(registered_model=model, name=name).exists():
        return
    # In-process, like the checks below: a worker builds it otherwise (a ProfileBuild job).
    profiles.reference_profile_ensure(actor=services.WORKER, version=version)
    monitor = services.monitor_create(
        actor=users["owner"],
        model=model,
        version=version,
        alias=alias,
        name=name,
        window_hours=24,
        schedule_minutes=24 * 60,
        min_rows=200,
        request_retraining=True,
    )
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - dt.timedelta(days=DAYS)
    bot = users["pipeline-bot"]
    drifting = model.task == "classification"
    for day in range(DAYS):
        start = first + dt.timedelta(days=day)
        frame, labels = _traffic(
            version, day, drift=drifting and day >= DRIFT_FROM_DAY, start=start
        )
        services.prediction_batch_ingest(
            actor=bot,
            version=version,
            batch_id=f"demo-{start:%Y-%m-%d}",
            table=pa.Table.from_pandas(frame, preserve_index=False),
        )
        services.label_batch_ingest(
            actor=bot,
            model=model,
            batch_id=f"demo-labels-{start:%Y-%m-%d}",
            table=pa.Table.from_pandas(labels, preserve_index=False),
        )
        run, _ = services.check_run_request(
            actor=services.BEAT,
            monitor=monitor,
            window_end=start + dt.timedelta(days=1),
            trigger="schedule",
        )
        with transaction.atomic():
            job = job_claim(CheckRun, run.pk)
        if job is not None:  # in-process: the worker may not be running yet
            checks.check_run_execute(job=job)
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=today + dt.timedelta(days=1))
    kinds = sorted(monitor.alerts.values_list("kind", flat=True))
    command.stdout.write(
        f"monitoring: {model.name}/{name}: {DAYS} days, {len(kinds)} alert(s)"
        + (f" ({', '.join(kinds)})" if kinds else "")
    )


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    """Add monitoring demo data for the demo ``users`` and ``models`` (credit, diabetes)."""
    credit, diabetes = models["credit"], models["diabetes"]
    _simulate(command, users, credit, _version_for(credit, "staging"), "daily-drift")
    _simulate(command, users, diabetes, _version_for(diabetes, "champion"), "daily")
