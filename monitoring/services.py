"""Monitoring writes: ingestion, profiles, monitors, check runs and alerts.

Every service validates, locks what it changes, writes, appends its audit event
in the same transaction and publishes events after commit.
"""

from __future__ import annotations

import io
import logging
import math
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.audit import SystemActor, audit_record
from common.errors import DomainError, conflict
from common.events import publish_event
from common.evidence import DRIFT_BASELINE, EvidenceItem, evidence_produced
from common.jobs import job_enqueue, job_finish
from common.permissions import require
from common.storage import local_blob_path, open_blob, store_blob
from monitoring import drift, outputs, performance
from monitoring.choices import (
    ACTIVE_ALERT_STATUSES,
    ALERT_TRANSITIONS,
    AlertKind,
    AlertStatus,
    CheckKind,
    DriftMethod,
)
from monitoring.ingest import BatchRejected, validate_labels, validate_predictions
from monitoring.models import (
    Alert,
    CheckRun,
    LabelBatch,
    Monitor,
    PredictionBatch,
    ReferenceProfile,
    RetrainingSignal,
)
from monitoring.windows import batch_rows, labelled_rows, newest_batches, window_batches
from registry import selectors as registry_selectors
from registry.artifacts import load_estimator
from registry.choices import VersionStatus
from registry.models import ModelVersion, RegisteredModel

logger = logging.getLogger(__name__)
BEAT = SystemActor("monitoring.beat")
WORKER = SystemActor("monitoring.worker")

DEFAULT_THRESHOLDS: dict[str, float] = {
    "p_value": 0.05,  # a column drifts when p < p_value ...
    "psi": 0.1,  # ... and PSI >= psi (effect size; see docs/monitoring.md)
    "drift_share": 0.3,  # drift alert when this share of features drifted
    "metric_drop": 0.05,  # performance alert when a metric is this much worse than baseline
}


DRIFT_CHECKS = frozenset({CheckKind.DRIFT, CheckKind.PREDICTION_DRIFT, CheckKind.LABEL_DRIFT})
MAX_WINDOW_ROWS = 1_000_000_000


def rejected(exc: BatchRejected) -> DomainError:
    return DomainError("invalid_batch", exc.message, details={"problems": exc.problems})


# --- reference profiles ----------------------------------------------------------------

_profile_cache: dict[str, drift.Profile] = {}


def profile_load(profile: ReferenceProfile) -> drift.Profile:
    """The stored features profile (cached per process by digest: blobs never change)."""
    return _load_profile_blob(profile.storage_key, profile.sha256)


def _load_profile_blob(key: str, digest: str) -> drift.Profile:
    cached = _profile_cache.get(digest)
    if cached is None:
        with open_blob(key) as fh:
            cached = drift.Profile.load(io.BytesIO(fh.read()))
        if len(_profile_cache) > 32:
            _profile_cache.clear()
        _profile_cache[digest] = cached
    return cached


def reference_profile_ensure(*, actor: Any, version: ModelVersion) -> ReferenceProfile | None:
    """Build the version's drift baseline once, from its training dataset.

    None when the version has no training dataset (drift cannot be judged).
    Files a DRIFT_BASELINE evidence item in the same transaction. The baseline holds
    two profiles: the features, and the model's outputs on the same rows with the
    target (prediction and label drift; see ``monitoring.outputs``).
    """
    existing = ReferenceProfile.objects.filter(version=version).first()
    if existing is not None or version.training_dataset_id is None:
        return existing
    dataset = version.training_dataset
    features = [f for f in version.feature_names if f in dataset.column_names]
    target = version.target_column if version.target_column in dataset.column_names else None
    with local_blob_path(dataset.storage_key) as path:
        frame = pq.read_table(path, columns=features + ([target] if target else [])).to_pandas()
    profile = drift.build_profile(frame[features])
    key, digest = _store_profile(profile)
    outputs_key, outputs_digest, outputs_columns, outputs_note = _build_outputs(
        version, frame, features, target
    )
    del frame
    with transaction.atomic():
        ModelVersion.objects.select_for_update().get(pk=version.pk)
        existing = ReferenceProfile.objects.filter(version=version).first()
        if existing is not None:  # built concurrently by another request
            return existing
        row = ReferenceProfile.objects.create(
            version=version,
            dataset=dataset,
            storage_key=key,
            sha256=digest,
            fingerprint=profile.fingerprint,
            row_count=profile.rows,
            columns=list(profile.columns),
            outputs_storage_key=outputs_key,
            outputs_sha256=outputs_digest,
            outputs_columns=outputs_columns,
            outputs_note=outputs_note,
        )
        audit_record(
            actor=actor,
            action="monitoring.profile.build",
            obj=row,
            after={
                "version": version.pk,
                "dataset": dataset.pk,
                "sha256": digest,
                "outputs_sha256": outputs_digest,
                "outputs_note": outputs_note,
            },
        )
        evidence_produced(
            actor=actor,
            item=EvidenceItem(
                version_id=version.pk,
                kind=DRIFT_BASELINE,
                sha256=digest,
                passed=True,
                summary=(
                    f"Drift baseline from {dataset} ({profile.rows} rows, "
                    f"{len(profile.columns)} features"
                    + (f"; outputs: {', '.join(outputs_columns)}" if outputs_columns else "")
                    + ")."
                ),
                source=f"monitoring.referenceprofile:{row.pk}",
                details={
                    "fingerprint": profile.fingerprint,
                    "columns": list(profile.columns),
                    "outputs_columns": outputs_columns,
                    "outputs_sha256": outputs_digest,
                    "outputs_note": outputs_note,
                },
            ),
        )
    return row


def _store_profile(profile: drift.Profile) -> tuple[str, str]:
    buffer = io.BytesIO()
    profile.save(buffer)
    buffer.seek(0)
    key, digest, _size = store_blob("profiles", buffer)
    return key, digest


def _build_outputs(
    version: ModelVersion, frame: Any, features: list[str], target: str | None
) -> tuple[str, str, list[str], str]:
    """(blob key, digest, columns, note) of the outputs profile; a note instead when the
    model's outputs on its training rows cannot be computed (the features profile
    does not depend on it)."""
    if target is None:
        return "", "", [], f"the training dataset has no target column {version.target_column!r}"
    if len(features) != len(version.feature_names):
        return "", "", [], "the training dataset lacks some of the model's inputs"
    with local_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    try:
        reference = outputs.reference_outputs(
            estimator, frame[features], frame[target], task=version.registered_model.task
        )
    except outputs.OutputsUnavailable as exc:
        return "", "", [], str(exc)
    profile = drift.build_profile(reference)
    key, digest = _store_profile(profile)
    return key, digest, list(profile.columns), ""


def outputs_profile_load(profile: ReferenceProfile) -> drift.Profile | None:
    """The outputs profile (prediction, probability, label), None when there is none."""
    if not profile.outputs_storage_key:
        return None
    return _load_profile_blob(profile.outputs_storage_key, profile.outputs_sha256)


def predicted_profile(outputs_profile: drift.Profile) -> drift.Profile:
    """The outputs profile without the label: what prediction batches are summarized on."""
    return drift.Profile(
        columns={
            name: column
            for name, column in outputs_profile.columns.items()
            if name in outputs.PREDICTED
        },
        bins=outputs_profile.bins,
        rows=outputs_profile.rows,
    )


# --- ingestion -------------------------------------------------------------------------


def reference_profile_build_for(*, version_id: int) -> bool:
    """Worker side of ``queue_reference_profile``: True when a baseline exists after."""
    version = (
        ModelVersion.objects.select_related("training_dataset", "registered_model")
        .filter(pk=version_id, status=VersionStatus.READY)
        .first()
    )
    if version is None:
        return False
    return reference_profile_ensure(actor=WORKER, version=version) is not None


def _store_table(table: pa.Table) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "batch.parquet")
        pq.write_table(table, path, compression="zstd")
        with open(path, "rb") as fh:
            key, digest, _size = store_blob("batches", fh)
    return key, digest


def _check_batch_id(batch_id: Any) -> str:
    if not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > 100:
        raise DomainError(
            "invalid_batch",
            "A batch needs a batch_id: a non-empty string of at most 100 characters.",
        )
    return batch_id.strip()


def prediction_batch_ingest(
    *, actor: Any, version: ModelVersion, batch_id: str, table: pa.Table
) -> tuple[PredictionBatch, bool]:
    """Validate and store one prediction batch; (batch, created).

    A batch id already stored for this version returns the stored batch
    (created=False) when the content is the same, and 409 when it differs:
    retries are safe and nothing is counted twice.
    """
    require(actor, "register", version)
    batch_id = _check_batch_id(batch_id)
    if version.status != VersionStatus.READY:
        raise conflict("version_not_ready", f"{version} is not ready; it cannot serve predictions.")
    existing = PredictionBatch.objects.filter(version=version, batch_id=batch_id).first()
    try:
        clean, span = validate_predictions(
            table,
            signature=version.signature.get("inputs", []),
            task=version.registered_model.task,
        )
    except BatchRejected as exc:
        raise rejected(exc) from None
    if existing is not None:
        return _same_batch(existing, _store_table(clean)[1]), False
    profile_row = reference_profile_ensure(actor=actor, version=version)
    summary: dict[str, Any] = {}
    output_summary: dict[str, Any] = {}
    # Writing the Parquet blob (Arrow, GIL released) overlaps with the summaries
    # (numpy): on two cores a million-row batch ingests in about half the time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        stored = pool.submit(_store_table, clean)
        if profile_row is not None:
            features = [c for c in profile_row.columns if c in clean.column_names]
            summary = drift.summarize(
                clean.select(features).to_pandas(), profile_load(profile_row)
            ).to_dict()
            output_summary = _output_summary(profile_row, version, clean)
        key, digest = stored.result()
    now = timezone.now()
    first_at, last_at = span if span else (now, now)
    try:
        with transaction.atomic():
            batch = PredictionBatch.objects.create(
                version=version,
                batch_id=batch_id,
                storage_key=key,
                sha256=digest,
                row_count=clean.num_rows,
                first_at=first_at,
                last_at=last_at,
                summary=summary,
                output_summary=output_summary,
                created_by=actor,
            )
            audit_record(
                actor=actor,
                action="monitoring.predictions.ingest",
                obj=batch,
                after={"batch_id": batch_id, "rows": clean.num_rows, "sha256": digest},
            )
    except IntegrityError:  # the same batch id, posted concurrently
        existing = PredictionBatch.objects.get(version=version, batch_id=batch_id)
        return _same_batch(existing, digest), False
    return batch, True


def _output_summary(
    profile_row: ReferenceProfile, version: ModelVersion, clean: pa.Table
) -> dict[str, Any]:
    """The batch's predictions (and scores) summarized on the outputs profile."""
    reference = outputs_profile_load(profile_row)
    if reference is None:
        return {}
    present = {
        name: clean.column(name).to_numpy()
        for name in outputs.PREDICTED
        if name in clean.column_names
    }
    frame = outputs.outputs_frame(version.registered_model.task, present)
    return drift.summarize(frame, predicted_profile(reference)).to_dict()


def _same_batch(existing: Any, digest: str) -> Any:
    if existing.sha256 != digest:
        raise conflict(
            "batch_conflict",
            f"Batch {existing.batch_id!r} was already posted with other content.",
            batch_id=existing.batch_id,
        )
    return existing


def label_batch_ingest(
    *, actor: Any, model: RegisteredModel, batch_id: str, table: pa.Table
) -> tuple[LabelBatch, bool]:
    require(actor, "register", model)
    batch_id = _check_batch_id(batch_id)
    try:
        clean = validate_labels(table, task=model.task)
    except BatchRejected as exc:
        raise rejected(exc) from None
    key, digest = _store_table(clean)
    existing = LabelBatch.objects.filter(registered_model=model, batch_id=batch_id).first()
    if existing is not None:
        return _same_batch(existing, digest), False
    try:
        with transaction.atomic():
            batch = LabelBatch.objects.create(
                registered_model=model,
                batch_id=batch_id,
                storage_key=key,
                sha256=digest,
                row_count=clean.num_rows,
                created_by=actor,
            )
            audit_record(
                actor=actor,
                action="monitoring.labels.ingest",
                obj=batch,
                after={"batch_id": batch_id, "rows": clean.num_rows, "sha256": digest},
            )
    except IntegrityError:
        existing = LabelBatch.objects.get(registered_model=model, batch_id=batch_id)
        return _same_batch(existing, digest), False
    return batch, True


# --- monitors --------------------------------------------------------------------------


def _clean_thresholds(thresholds: dict[str, Any] | None) -> dict[str, float]:
    merged = dict(DEFAULT_THRESHOLDS)
    for name, value in (thresholds or {}).items():
        if name not in DEFAULT_THRESHOLDS:
            raise DomainError(
                "invalid",
                f"Unknown threshold {name!r}.",
                details={"thresholds": sorted(DEFAULT_THRESHOLDS)},
            )
        if not isinstance(value, int | float) or value < 0:
            raise DomainError("invalid", f"Threshold {name!r} must be a number >= 0.")
        merged[name] = float(value)
    if not 0 < merged["p_value"] <= 1:
        raise DomainError("invalid", "Threshold 'p_value' must be in (0, 1].")
    return merged


def _clean_weights(weights: dict[str, Any] | None, features: list[str]) -> dict[str, float]:
    """Feature weights for the drift share: known features, finite numbers >= 0, not all 0.
    Features left out weigh 0 (the drift engine's rule)."""
    if not weights:
        return {}
    unknown = sorted(set(weights) - set(features))
    if unknown:
        raise DomainError(
            "invalid", f"Weights for unknown features {unknown}.", details={"columns": features}
        )
    clean: dict[str, float] = {}
    for name, value in weights.items():
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise DomainError("invalid", f"Weight of {name!r} must be a finite number >= 0.")
        clean[name] = float(value)
    if not any(clean.values()):
        raise DomainError("invalid", "At least one weight must be above 0.")
    return clean


def monitor_create(
    *,
    actor: Any,
    model: RegisteredModel,
    version: ModelVersion,
    name: str,
    checks: list[str] | None = None,
    window_hours: int = 24,
    window_rows: int | None = None,
    drift_method: str = DriftMethod.AUTO,
    schedule_minutes: int = 60,
    min_rows: int = 100,
    thresholds: dict[str, Any] | None = None,
    tests: dict[str, str] | None = None,
    weights: dict[str, float] | None = None,
    notify: bool = True,
    request_retraining: bool = False,
) -> Monitor:
    """A monitor over the last ``window_hours``, or over the newest ``window_rows`` rows.

    ``checks`` default to all four: data drift, prediction drift, label drift and
    performance. The three drift checks need the version's training dataset.
    """
    require(actor, "change", model)
    checks = list(dict.fromkeys(checks or CheckKind.values))
    bad = sorted(set(checks) - set(CheckKind.values))
    if bad or not checks:
        raise DomainError("invalid", f"Unknown checks {bad}.", details={"checks": CheckKind.values})
    if drift_method not in DriftMethod.values:
        raise DomainError(
            "invalid",
            f"Unknown drift method {drift_method!r}.",
            details={"drift_method": DriftMethod.values},
        )
    if window_rows is not None and not 1 <= window_rows <= MAX_WINDOW_ROWS:
        raise DomainError("invalid", f"window_rows must be between 1 and {MAX_WINDOW_ROWS}.")
    if version.registered_model_id != model.pk or version.status != VersionStatus.READY:
        raise DomainError("invalid", f"{version} is not a ready version of {model.name}.")
    for column, test in (tests or {}).items():
        if test not in drift.TEST_NAMES or column not in version.feature_names:
            raise DomainError(
                "invalid",
                f"Test override {column!r}: {test!r} is not valid.",
                details={"tests": list(drift.TEST_NAMES), "columns": version.feature_names},
            )
    weights = _clean_weights(weights, version.feature_names)
    if set(checks) & DRIFT_CHECKS and version.training_dataset_id is None:
        raise DomainError(
            "no_reference",
            f"{version} has no training dataset to build a drift baseline from.",
        )
    if window_hours < 1 or schedule_minutes < 1:
        raise DomainError("invalid", "window_hours and schedule_minutes must be at least 1.")
    reference_profile_ensure(actor=actor, version=version)
    with transaction.atomic():
        if Monitor.objects.filter(registered_model=model, name=name).exists():
            raise conflict("exists", f"{model.name} already has a monitor named {name!r}.")
        monitor = Monitor.objects.create(
            registered_model=model,
            version=version,
            name=name,
            checks=checks,
            window_hours=window_hours,
            window_rows=window_rows,
            drift_method=drift_method,
            schedule_minutes=schedule_minutes,
            min_rows=min_rows,
            thresholds=_clean_thresholds(thresholds),
            tests=tests or {},
            weights=weights,
            notify=notify,
            request_retraining=request_retraining,
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="monitoring.monitor.create",
            obj=monitor,
            after={
                "version": version.number,
                "checks": checks,
                "window_hours": window_hours,
                "window_rows": window_rows,
                "drift_method": drift_method,
                "schedule_minutes": schedule_minutes,
                "thresholds": monitor.thresholds,
                "weights": weights,
            },
        )
    return monitor


def check_run_request(
    *,
    actor: Any,
    monitor: Monitor,
    window_end: datetime | None = None,
    trigger: str = "manual",
) -> tuple[CheckRun, bool]:
    """Queue a check over the window ending at ``window_end``; (run, created).

    At most one run per monitor and window: asking again returns the same row.
    """
    if trigger == "manual":
        require(actor, "change", monitor)
    end = (window_end or timezone.now()).replace(microsecond=0)
    if monitor.window_rows:
        start = min((b.first_at for b in newest_batches(monitor, end)), default=end)
    else:
        start = end - timedelta(hours=monitor.window_hours)
    with transaction.atomic():
        run, created = CheckRun.objects.get_or_create(
            monitor=monitor,
            window_start=start,
            window_end=end,
            defaults={
                "trigger": trigger,
                "requested_by": actor if getattr(actor, "pk", None) else None,
            },
        )
        if created:
            audit_record(
                actor=actor,
                action="monitoring.check.request",
                obj=run,
                after={"monitor": monitor.pk, "window_start": start, "window_end": end},
            )
            job_enqueue(run)
    return run, created


def monitors_claim_due(*, now: datetime | None = None) -> int:
    """Beat: claim each due monitor with a conditional update, queue its check.

    Two beats (or a beat and a retry) never queue the same monitor twice: the
    UPDATE only matches while ``next_run_at`` still holds the value we read.
    A dead worker loses nothing: the run row stays queued/running and
    ``requeue_stale_jobs`` sends it again.
    """
    now = now or timezone.now()
    queued = 0
    due = Monitor.objects.filter(enabled=True, next_run_at__lte=now).values_list(
        "pk", "next_run_at", "schedule_minutes"
    )
    for pk, next_run_at, minutes in list(due):
        following = max(next_run_at + timedelta(minutes=minutes), now)
        with transaction.atomic():
            claimed = Monitor.objects.filter(pk=pk, next_run_at=next_run_at).update(
                next_run_at=following
            )
            if not claimed:
                continue
            monitor = Monitor.objects.select_related("registered_model", "version").get(pk=pk)
            _run, created = check_run_request(
                actor=BEAT, monitor=monitor, window_end=next_run_at, trigger="schedule"
            )
            queued += int(created)
    return queued


# --- running a check --------------------------------------------------------------------


def _thresholds(monitor: Monitor) -> drift.Thresholds:
    th = monitor.thresholds
    return drift.Thresholds(p_value=th["p_value"], psi=th["psi"], drift_share=th["drift_share"])


def _reads_rows(monitor: Monitor, rows: int) -> bool:
    """Whether drift is computed on the window's raw rows (exact KS) or its summaries."""
    if monitor.drift_method == DriftMethod.AUTO:
        return rows <= settings.MONITOR_ROWS_METHOD_MAX_ROWS
    return monitor.drift_method == DriftMethod.ROWS


def _too_few(
    monitor: Monitor, rows: int, what: str = "rows in the window"
) -> dict[str, Any] | None:
    if rows == 0:
        return {"status": "not_computable", "reason": f"no {what}"}
    if rows < monitor.min_rows:
        return {
            "status": "not_computable",
            "reason": f"{rows} {what}, fewer than the minimum {monitor.min_rows}",
        }
    return None


def _drift_result(
    monitor: Monitor, profile_row: ReferenceProfile | None, batches: list[PredictionBatch]
) -> dict[str, Any]:
    """Data drift of the features over the window."""
    if profile_row is None:
        return {"status": "not_computable", "reason": "no reference profile"}
    rows = sum(b.row_count for b in batches)
    if (short := _too_few(monitor, rows)) is not None:
        return short
    profile = profile_load(profile_row)
    if _reads_rows(monitor, rows):
        result = drift.compare(
            profile,
            batch_rows(batches, list(profile.columns)),
            tests=monitor.tests or None,
            thresholds=_thresholds(monitor),
            weights=monitor.weights or None,
        )
    else:
        summaries = [drift.Summary.from_dict(b.summary) for b in batches if b.summary]
        if not summaries:
            return {"status": "not_computable", "reason": "no summarized rows in the window"}
        result = drift.compare_summary(
            profile,
            drift.merge_summaries(summaries),
            tests=monitor.tests or None,
            thresholds=_thresholds(monitor),
            weights=monitor.weights or None,
        )
    return {**result.to_dict(), "status": "ok"}


def _outputs_result(result: drift.DriftResult) -> dict[str, Any]:
    out = result.to_dict()
    out["status"] = "ok" if result.computable_count else "not_computable"
    if not result.computable_count:
        out["reason"] = (
            "; ".join(f"{c.column}: {c.reason}" for c in result.columns if c.reason)
            or "nothing computable"
        )
    out["drifted"] = result.drifted_columns
    return out


def _outputs_reference(
    profile_row: ReferenceProfile | None, column: str
) -> tuple[drift.Profile | None, dict[str, Any]]:
    """The outputs profile when it holds ``column``, else the not-computable result."""
    reference = None if profile_row is None else outputs_profile_load(profile_row)
    if reference is not None and column in reference.columns:
        return reference, {}
    reason = profile_row.outputs_note if profile_row is not None else "no reference profile"
    return None, {"status": "not_computable", "reason": reason or f"no {column} profile"}


def _prediction_drift(
    monitor: Monitor, profile_row: ReferenceProfile | None, batches: list[PredictionBatch]
) -> dict[str, Any]:
    """Drift of the predictions (and positive-class scores) against the model's own
    outputs on its training rows."""
    reference, missing = _outputs_reference(profile_row, outputs.PREDICTION)
    if reference is None:
        return missing
    rows = sum(b.row_count for b in batches)
    if (short := _too_few(monitor, rows)) is not None:
        return short
    predicted = predicted_profile(reference)
    # A score column that no batch of the window sent is not monitored.
    if _reads_rows(monitor, rows):
        frame = batch_rows(batches, list(predicted.columns))
        present = [c for c in predicted.columns if c in frame.columns]
        current = outputs.outputs_frame(
            monitor.registered_model.task, {c: frame[c].to_numpy() for c in present}
        )
        result = drift.compare(predicted, current, columns=present, thresholds=_thresholds(monitor))
    else:
        summaries = [drift.Summary.from_dict(b.output_summary) for b in batches if b.output_summary]
        if not summaries:
            return {"status": "not_computable", "reason": "no summarized predictions in the window"}
        merged = drift.merge_summaries(summaries)
        present = [c for c in predicted.columns if c in merged.columns]
        result = drift.compare_summary(
            predicted, merged, columns=present, thresholds=_thresholds(monitor)
        )
    return _outputs_result(result)


def _label_drift(
    monitor: Monitor, profile_row: ReferenceProfile | None, joined: Any
) -> dict[str, Any]:
    """Drift of the ground truth of the window's requests against the training target."""
    reference, missing = _outputs_reference(profile_row, outputs.LABEL)
    if reference is None:
        return missing
    if (short := _too_few(monitor, len(joined), "labelled rows")) is not None:
        return short
    current = outputs.outputs_frame(
        monitor.registered_model.task, {outputs.LABEL: joined["label"].to_numpy()}
    )
    result = drift.compare(
        reference, current, columns=[outputs.LABEL], thresholds=_thresholds(monitor)
    )
    return _outputs_result(result)


def _performance_result(
    monitor: Monitor, batches: list[PredictionBatch], joined: Any
) -> dict[str, Any]:
    if (short := _too_few(monitor, len(joined), "labelled rows")) is not None:
        return {**short, "labelled": len(joined)}
    classes = monitor.version.classes
    values = performance.compute_metrics(monitor.registered_model.task, joined, classes=classes)
    baseline = {
        k: v for k, v in (monitor.version.metrics or {}).items() if k in values and v is not None
    }
    drops = {
        k: performance.metric_drop(k, float(baseline[k]), v)
        for k, v in values.items()
        if v is not None and k in baseline
    }
    return {
        "status": "ok",
        "labelled": len(joined),
        "values": values,
        "positive_class": monitor.version.positive_class,
        "baseline": baseline,
        "drops": drops,
        "champion": _champion_metrics(monitor, batches),
    }


def _champion_metrics(monitor: Monitor, batches: list[PredictionBatch]) -> dict[str, Any] | None:
    """The champion's metrics on its own labelled rows of the same window (informative)."""
    champion = registry_selectors.champion_for(model=monitor.registered_model)
    if champion is None or champion.pk == monitor.version_id or not batches:
        return None
    start = min(b.first_at for b in batches)
    end = max(b.last_at for b in batches)
    theirs = list(
        PredictionBatch.objects.filter(version=champion, last_at__gte=start, first_at__lte=end)
    )
    joined = labelled_rows(monitor.registered_model, champion, theirs)
    if len(joined) < monitor.min_rows:
        return {"version": champion.number, "labelled": len(joined), "values": None}
    return {
        "version": champion.number,
        "labelled": len(joined),
        "values": performance.compute_metrics(
            monitor.registered_model.task, joined, classes=champion.classes
        ),
    }


def check_run_execute(*, job: CheckRun) -> CheckRun:
    """The worker's half of a check: compute, store, open alerts; one transaction."""
    monitor = Monitor.objects.select_related("registered_model", "version").get(pk=job.monitor_id)
    started = time.monotonic()
    batches = window_batches(monitor, job.window_start, job.window_end)
    rows = sum(b.row_count for b in batches)
    checks = set(monitor.checks)
    profile_row = (
        ReferenceProfile.objects.filter(version=monitor.version).first()
        if checks & DRIFT_CHECKS
        else None
    )
    drift_out = _drift_result(monitor, profile_row, batches) if CheckKind.DRIFT in checks else {}
    output_out: dict[str, Any] = {}
    if CheckKind.PREDICTION_DRIFT in checks:
        output_out["prediction"] = _prediction_drift(monitor, profile_row, batches)
    perf_out: dict[str, Any] = {}
    if checks & {CheckKind.PERFORMANCE, CheckKind.LABEL_DRIFT}:
        joined = labelled_rows(monitor.registered_model, monitor.version, batches)
        if CheckKind.LABEL_DRIFT in checks:
            output_out["label"] = _label_drift(monitor, profile_row, joined)
        if CheckKind.PERFORMANCE in checks:
            perf_out = _performance_result(monitor, batches, joined)
    breaches = _breaches(monitor, drift_out, output_out, perf_out)
    elapsed = time.monotonic() - started
    with transaction.atomic():
        job.row_count = rows
        job.labelled_count = perf_out.get("labelled")
        job.drift_share = drift_out.get("drift_share")
        job.drift = drift_out
        job.output_drift = output_out
        job.metrics = perf_out
        job.breaches = breaches
        job.save(
            update_fields=[
                "row_count",
                "labelled_count",
                "drift_share",
                "drift",
                "output_drift",
                "metrics",
                "breaches",
            ]
        )
        job_finish(job, log=f"{len(batches)} batches, {rows} rows, {elapsed:.3f}s")
        audit_record(
            actor=WORKER,
            action="monitoring.check.finish",
            obj=job,
            after={
                "rows": rows,
                "drift_share": job.drift_share,
                "output_drift": {k: v.get("drifted") for k, v in output_out.items()},
                "metrics": perf_out.get("values"),
                "breaches": [b["kind"] for b in breaches],
            },
        )
        for breach in breaches:
            alert_raise(monitor=monitor, run=job, **breach)
    return job


def _describe(column: dict[str, Any]) -> str:
    psi = column.get("psi")
    p_value = column.get("p_value")
    parts = [f"{column['test']}"]
    if p_value is not None:
        parts.append(f"p={p_value:.3g}")
    if psi is not None:
        parts.append(f"PSI={psi:.3f}")
    return f"{column['column']} ({', '.join(parts)})"


def _breaches(
    monitor: Monitor,
    drift_out: dict[str, Any],
    output_out: dict[str, Any],
    perf_out: dict[str, Any],
) -> list[dict[str, Any]]:
    th = monitor.thresholds
    breaches: list[dict[str, Any]] = []
    if drift_out.get("status") == "ok" and (drift_out.get("drift_share") or 0) >= th["drift_share"]:
        drifted = [c["column"] for c in drift_out["columns"] if c.get("drifted")]
        breaches.append(
            {
                "kind": AlertKind.DRIFT,
                "message": (
                    f"{len(drifted)} of {drift_out['computable_count']} features drifted "
                    f"(share {drift_out['drift_share']:.2f} >= {th['drift_share']}): "
                    f"{', '.join(drifted)}"
                ),
                "details": {"drift_share": drift_out["drift_share"], "columns": drifted},
            }
        )
    for part, kind, what in (
        ("prediction", AlertKind.PREDICTION_DRIFT, "Predictions drifted"),
        ("label", AlertKind.LABEL_DRIFT, "Labels drifted"),
    ):
        out = output_out.get(part, {})
        drifted_columns = [c for c in out.get("columns", []) if c.get("drifted")]
        if out.get("status") == "ok" and drifted_columns:
            breaches.append(
                {
                    "kind": kind,
                    "message": f"{what} from the training baseline: "
                    + ", ".join(_describe(c) for c in drifted_columns),
                    "details": {
                        "columns": [c["column"] for c in drifted_columns],
                        "psi": {c["column"]: c.get("psi") for c in drifted_columns},
                        "p_value": {c["column"]: c.get("p_value") for c in drifted_columns},
                    },
                }
            )
    if perf_out.get("status") == "ok":
        worse = {k: d for k, d in perf_out["drops"].items() if d > th["metric_drop"]}
        if worse:
            breaches.append(
                {
                    "kind": AlertKind.PERFORMANCE,
                    "message": "Performance below baseline: "
                    + ", ".join(
                        f"{k} {perf_out['values'][k]:.4f} vs {perf_out['baseline'][k]:.4f}"
                        for k in worse
                    ),
                    "details": {"drops": worse, "values": perf_out["values"]},
                }
            )
    return breaches


def check_run_failed(*, job: CheckRun) -> None:
    """Failure handler: the run row already says failed; record it in the trail."""
    audit_record(
        actor=WORKER, action="monitoring.check.fail", obj=job, after={"error": job.error[-500:]}
    )


# --- alerts ------------------------------------------------------------------------------


def _alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "alert": alert.pk,
        "model": alert.registered_model.name,
        "monitor": alert.monitor.name,
        "kind": alert.kind,
        "status": alert.status,
        "message": alert.message,
    }


def alert_raise(
    *, monitor: Monitor, run: CheckRun, kind: str, message: str, details: dict[str, Any]
) -> tuple[Alert, bool]:
    """Open an alert, or count one more occurrence of the one already active."""
    with transaction.atomic():
        Monitor.objects.select_for_update().get(pk=monitor.pk)  # serialises dedup per monitor
        active = Alert.objects.filter(
            monitor=monitor, kind=kind, status__in=ACTIVE_ALERT_STATUSES
        ).first()
        if active is not None:
            active.occurrences += 1
            active.last_run = run
            active.details = details
            active.save(update_fields=["occurrences", "last_run", "details"])
            return active, False
        alert = Alert.objects.create(
            registered_model=monitor.registered_model,
            monitor=monitor,
            kind=kind,
            message=message,
            details=details,
            first_run=run,
            last_run=run,
        )
        audit_record(
            actor=WORKER,
            action="monitoring.alert.open",
            obj=alert,
            after={"kind": kind, "message": message, "run": run.pk},
        )
        if monitor.request_retraining:
            signal = RetrainingSignal.objects.create(
                registered_model=monitor.registered_model,
                version=monitor.version,
                alert=alert,
                reason=message,
            )
            audit_record(
                actor=WORKER,
                action="monitoring.retraining.request",
                obj=signal,
                after={"alert": alert.pk, "reason": message},
            )
            # Whoever consumes signals (lifecycle's retraining) hears it after commit;
            # its beat sweep catches up on any signal whose event was lost.
            publish_event(
                "monitoring.retraining.requested",
                {"signal": signal.pk, "alert": alert.pk, "model": monitor.registered_model.name},
            )
        if monitor.notify:
            publish_event("monitoring.alert.opened", _alert_payload(alert))
    return alert, True


ALERT_ACTIONS = {
    AlertStatus.ACKNOWLEDGED: "monitoring.alert.acknowledge",
    AlertStatus.RESOLVED: "monitoring.alert.resolve",
}


def _alert_transition(*, actor: Any, alert: Alert, to: str, comment: str = "") -> Alert:
    require(actor, "change", alert)
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if to not in ALERT_TRANSITIONS[locked.status]:
            raise conflict(
                "invalid_transition",
                f"An {locked.status} alert cannot become {to}.",
                status=locked.status,
            )
        before = locked.status
        locked.status = to
        now = timezone.now()
        if to == AlertStatus.ACKNOWLEDGED:
            locked.acknowledged_at, locked.acknowledged_by = now, actor
        else:
            locked.resolved_at, locked.resolved_by, locked.resolution = now, actor, comment
        locked.save()
        audit_record(
            actor=actor,
            action=ALERT_ACTIONS[to],
            obj=locked,
            before={"status": before},
            after={"status": to, "comment": comment},
        )
        publish_event(f"monitoring.alert.{to}", _alert_payload(locked))
    return locked


def alert_email(*, alert_id: int) -> int:
    """Send the "alert opened" mail; returns the number of recipients (0: nothing sent)."""
    alert = (
        Alert.objects.select_related("registered_model__owner", "registered_model__team", "monitor")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None or alert.status != AlertStatus.OPEN:
        return 0
    model = alert.registered_model
    recipients = registry_selectors.model_contacts(model=model)
    if not recipients:
        return 0
    send_mail(
        subject=f"[ModelGate] {alert.get_kind_display()} alert on {model.name}",
        message=(
            f"Monitor {alert.monitor.name} opened an alert on {model.name}:\n\n{alert.message}\n\n"
            f"Acknowledge or resolve it on the monitoring dashboard of {model.name}."
        ),
        from_email=None,
        recipient_list=sorted(recipients),
    )
    return len(recipients)


def alert_acknowledge(*, actor: Any, alert: Alert) -> Alert:
    return _alert_transition(actor=actor, alert=alert, to=AlertStatus.ACKNOWLEDGED)


def alert_resolve(*, actor: Any, alert: Alert, comment: str = "") -> Alert:
    return _alert_transition(actor=actor, alert=alert, to=AlertStatus.RESOLVED, comment=comment)
