"""Monitoring writes: ingestion, monitors, check requests and alerts.

The drift baselines are built in ``monitoring.profiles``; a requested check is
computed by ``monitoring.checks``.

Every service validates, locks what it changes, writes, appends its audit event
in the same transaction and publishes events after commit.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.audit import SystemActor, audit_record
from common.errors import DomainError, conflict
from common.events import publish_event
from common.jobs import job_enqueue, job_finish
from common.links import absolute_url
from common.models import JobStatus
from common.permissions import require
from common.storage import cached_blob_path, store_blob
from common.telemetry import alert_opened
from monitoring import data_policy, drift, outputs
from monitoring.choices import (
    ACTIVE_ALERT_STATUSES,
    ALERT_TRANSITIONS,
    AlertKind,
    AlertStatus,
    CheckKind,
    DriftMethod,
    MetricTolerance,
    PerformanceBaseline,
)
from monitoring.ingest import BatchRejected, validate_labels, validate_predictions
from monitoring.models import (
    Alert,
    CheckRun,
    LabelBatch,
    Monitor,
    PredictionBatch,
    ProfileBuild,
    ReferenceProfile,
    RetrainingSignal,
)
from monitoring.profiles import (
    outputs_profile_load,
    predicted_profile,
    profile_load,
    reference_profile_ensure,
)
from monitoring.windows import newest_batches
from registry import selectors as registry_selectors
from registry.choices import VersionStatus
from registry.models import Alias, ModelVersion, RegisteredModel

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


# --- ingestion -------------------------------------------------------------------------


def reference_profile_request(*, version: ModelVersion) -> ProfileBuild | None:
    """Have a worker build the version's drift baseline; the job, or None when there is
    nothing to do (no training dataset; or a baseline and every batch summarized on it).

    At most one build is queued per version: a queued one will see everything that
    is committed when it runs. Called inside the transaction that stores a batch
    without a summary, this takes the version row lock until that commits, which
    orders it with the summary pass of ``reference_profile_build`` (same lock).
    """
    if version.training_dataset_id is None:
        return None
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
        if (
            ReferenceProfile.objects.filter(version=version).exists()
            and not PredictionBatch.objects.filter(version=version, summary={}).exists()
        ):
            return None
        build = ProfileBuild.objects.filter(version=version, status=JobStatus.QUEUED).first()
        if build is None:
            build = ProfileBuild.objects.create(version=version)
            job_enqueue(build)
    return build


def reference_profile_build(*, job: ProfileBuild) -> ProfileBuild:
    """Worker side of ``reference_profile_request``: the baseline (once), then the
    summaries of the batches that were stored before it existed."""
    version = ModelVersion.objects.select_related("training_dataset", "registered_model").get(
        pk=job.version_id
    )
    profile_row = reference_profile_ensure(actor=WORKER, version=version)
    summarized = 0 if profile_row is None else _summarize_stored_batches(version, profile_row)
    with transaction.atomic():
        job_finish(
            job,
            log=("no training dataset" if profile_row is None else f"baseline {profile_row.pk}")
            + f"; {summarized} stored batches summarized",
        )
    return job


def _summarize_stored_batches(version: ModelVersion, profile_row: ReferenceProfile) -> int:
    """Summarize the version's batches that were stored without a summary (ingested
    while the baseline was being built): the same summaries as at ingestion."""
    # Under the version row lock every ingestion that stored a batch without a
    # summary has committed (we see its batch), or has not yet asked for a build
    # and will find none queued (this job is running) and queue the next one.
    with transaction.atomic():
        ModelVersion.objects.select_for_update().get(pk=version.pk)
        pending = list(
            PredictionBatch.objects.filter(version=version, summary={}).values_list(
                "pk", "storage_key"
            )
        )
    profile = profile_load(profile_row)
    for pk, key in pending:
        with cached_blob_path(key) as path:
            clean = pq.read_table(path)
        features = [c for c in profile_row.columns if c in clean.column_names]
        PredictionBatch.objects.filter(pk=pk, summary={}).update(
            summary=drift.summarize(clean.select(features).to_pandas(), profile).to_dict(),
            output_summary=_output_summary(profile_row, version, clean),
        )
    return len(pending)


def profile_build_failed(*, job: ProfileBuild) -> None:
    """Failure handler: record in the trail that the version has no baseline yet (the
    next ingestion or monitor creation asks for a new build)."""
    audit_record(
        actor=WORKER,
        action="monitoring.profile.fail",
        obj=job,
        after={"version": job.version_id, "error": job.error[-500:]},
    )


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
    *,
    actor: Any,
    version: ModelVersion,
    batch_id: str,
    table: pa.Table,
    created_by: Any = None,
) -> tuple[PredictionBatch, bool]:
    """Validate and store one prediction batch; (batch, created).

    A batch id already stored for this version returns the stored batch
    (created=False) when the content is the same, and 409 when it differs:
    retries are safe and nothing is counted twice. ``created_by`` names the
    user the rows came from when ``actor`` is a system actor (the serving
    log's worker files what a service account's calls produced).
    """
    require(actor, "register", version)
    batch_id = _check_batch_id(batch_id)
    if version.status != VersionStatus.READY:
        raise conflict("version_not_ready", f"{version} is not ready; it cannot serve predictions.")
    existing = PredictionBatch.objects.filter(version=version, batch_id=batch_id).first()
    rules = data_policy.rules_for(model_id=version.registered_model_id)
    data_policy.refuse_without_key(rules)
    try:
        clean, span = validate_predictions(
            table,
            signature=version.signature.get("inputs", []),
            task=version.registered_model.task,
            rules=rules,  # dropped and hashed before anything below stores the table
        )
    except BatchRejected as exc:
        raise rejected(exc) from None
    if existing is not None:
        return _same_batch(existing, _store_table(clean)[1]), False
    # The baseline is a worker's job: a batch stored before it exists gets its
    # summaries from that job (see reference_profile_request below).
    profile_row = ReferenceProfile.objects.filter(version=version).first()
    summary: dict[str, Any] = {}
    output_summary: dict[str, Any] = {}
    # Writing the Parquet blob (Arrow, GIL released) overlaps with the summaries
    # (numpy): on two cores a million-row batch ingests in about half the time.
    with ThreadPoolExecutor(max_workers=1) as pool:
        stored = pool.submit(_store_table, clean)
        if profile_row is not None:
            features = [c for c in profile_row.columns if c in clean.column_names]
            summary = drift.summarize(
                clean.select(features).to_pandas(), profile_load(profile_row, rules)
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
                created_by=created_by or actor,
            )
            audit_record(
                actor=actor,
                action="monitoring.predictions.ingest",
                obj=batch,
                after={"batch_id": batch_id, "rows": clean.num_rows, "sha256": digest},
            )
            if profile_row is None:
                reference_profile_request(version=version)
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


def _monitor_settings_check(
    *,
    model: RegisteredModel,
    version: ModelVersion,
    checks: list[str] | None,
    window_hours: int,
    window_rows: int | None,
    drift_method: str,
    schedule_minutes: int,
    tests: dict[str, str] | None,
    weights: dict[str, Any] | None,
) -> tuple[list[str], dict[str, float]]:
    """A monitor's settings, checked the same way on create and on update:
    (the checks, deduplicated; the cleaned weights), or the 4xx that says why not."""
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
    clean_weights = _clean_weights(weights, version.feature_names)
    if set(checks) & DRIFT_CHECKS and version.training_dataset_id is None:
        raise DomainError(
            "no_reference",
            f"{version} has no training dataset to build a drift baseline from.",
        )
    if window_hours < 1 or schedule_minutes < 1:
        raise DomainError("invalid", "window_hours and schedule_minutes must be at least 1.")
    return checks, clean_weights


MAX_BASELINE_DAYS = 366


def _alias_version(model: RegisteredModel, alias: str) -> ModelVersion | None:
    """The version ``model@alias`` points at now (no permission rule: the caller's)."""
    found = (
        Alias.objects.filter(registered_model=model, name=alias).select_related("version").first()
    )
    return found.version if found is not None else None


def _followed_version(
    *, model: RegisteredModel, alias: str, version: ModelVersion | None
) -> ModelVersion:
    """The version a monitor watches: the one ``alias`` points at when given (``version``,
    if also given, must be that one), else ``version``; a 400 when neither is."""
    if alias:
        followed = _alias_version(model, alias)
        if followed is None:
            raise DomainError(
                "invalid", f"{model.name}@{alias} does not exist.", details={"alias": alias}
            )
        if version is not None and version.pk != followed.pk:
            raise DomainError(
                "invalid",
                f"{model.name}@{alias} points at v{followed.number}, not v{version.number}.",
                details={"alias": alias, "version": version.number},
            )
        return followed
    if version is None:
        raise DomainError(
            "invalid", "A monitor needs a version or an alias to follow.", details={"version": ""}
        )
    return version


def _check_baseline(*, baseline: str, baseline_days: int, metric_tolerance: str) -> None:
    if metric_tolerance not in MetricTolerance.values:
        raise DomainError(
            "invalid",
            f"Unknown metric tolerance {metric_tolerance!r}.",
            details={"metric_tolerance": MetricTolerance.values},
        )
    if baseline not in PerformanceBaseline.values:
        raise DomainError(
            "invalid",
            f"Unknown performance baseline {baseline!r}.",
            details={"baseline": PerformanceBaseline.values},
        )
    if (
        not isinstance(baseline_days, int)
        or isinstance(baseline_days, bool)
        or not 1 <= baseline_days <= MAX_BASELINE_DAYS
    ):
        raise DomainError(
            "invalid",
            f"baseline_days must be between 1 and {MAX_BASELINE_DAYS}.",
            details={"baseline_days": baseline_days},
        )


def monitor_create(
    *,
    actor: Any,
    model: RegisteredModel,
    version: ModelVersion | None = None,
    name: str,
    alias: str = "",
    checks: list[str] | None = None,
    window_hours: int = 24,
    window_rows: int | None = None,
    drift_method: str = DriftMethod.AUTO,
    schedule_minutes: int = 60,
    min_rows: int = 100,
    thresholds: dict[str, Any] | None = None,
    baseline: str = PerformanceBaseline.REFERENCE,
    baseline_days: int = 7,
    metric_tolerance: str = MetricTolerance.ABSOLUTE,
    tests: dict[str, str] | None = None,
    weights: dict[str, float] | None = None,
    notify: bool = True,
    request_retraining: bool = False,
) -> Monitor:
    """A monitor over the last ``window_hours``, or over the newest ``window_rows`` rows.

    ``alias`` (e.g. ``production``): the monitor follows it, each check judging the
    version the alias points at when it runs; ``version`` may then be left out (when
    given it must be the alias's). Without ``alias`` the monitor stays on ``version``.
    ``checks`` default to all four: data drift, prediction drift, label drift and
    performance. The three drift checks need the version's training dataset.
    ``baseline`` (``PerformanceBaseline``) is what performance is compared with:
    by default the version's first ``baseline_days`` days of production traffic;
    ``metric_tolerance`` how ``thresholds["metric_drop"]`` reads a drop from it.
    """
    require(actor, "change", model)
    alias = (alias or "").strip()
    version = _followed_version(model=model, alias=alias, version=version)
    _check_baseline(
        baseline=baseline, baseline_days=baseline_days, metric_tolerance=metric_tolerance
    )
    checks, weights = _monitor_settings_check(
        model=model,
        version=version,
        checks=checks,
        window_hours=window_hours,
        window_rows=window_rows,
        drift_method=drift_method,
        schedule_minutes=schedule_minutes,
        tests=tests,
        weights=weights,
    )
    with transaction.atomic():
        if Monitor.objects.filter(registered_model=model, name=name).exists():
            raise conflict("exists", f"{model.name} already has a monitor named {name!r}.")
        monitor = Monitor.objects.create(
            registered_model=model,
            version=version,
            alias=alias,
            name=name,
            checks=checks,
            window_hours=window_hours,
            window_rows=window_rows,
            drift_method=drift_method,
            schedule_minutes=schedule_minutes,
            min_rows=min_rows,
            thresholds=_clean_thresholds(thresholds),
            baseline=baseline,
            baseline_days=baseline_days,
            metric_tolerance=metric_tolerance,
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
                "alias": alias,
                "checks": checks,
                "window_hours": window_hours,
                "window_rows": window_rows,
                "drift_method": drift_method,
                "schedule_minutes": schedule_minutes,
                "thresholds": monitor.thresholds,
                "baseline": baseline,
                "baseline_days": baseline_days,
                "metric_tolerance": metric_tolerance,
                "weights": weights,
            },
        )
        reference_profile_request(version=version)  # a worker builds the baseline if missing
    return monitor


# What ``monitor_update`` may change (``version`` is a ModelVersion of the same model).
MONITOR_EDITABLE = (
    "name",
    "alias",
    "version",
    "checks",
    "window_hours",
    "window_rows",
    "drift_method",
    "schedule_minutes",
    "min_rows",
    "thresholds",
    "baseline",
    "baseline_days",
    "metric_tolerance",
    "tests",
    "weights",
    "notify",
    "request_retraining",
    "enabled",
)


def monitor_update(*, actor: Any, monitor: Monitor, **changes: Any) -> Monitor:
    """Change a monitor's settings (the UI's edit form and the API's PATCH).

    The merged settings are checked exactly as ``monitor_create`` checks them;
    a new version gets its drift baseline built like a new monitor's. Checks
    already queued keep the window they were asked for.
    """
    require(actor, "change", monitor)
    unknown = sorted(set(changes) - set(MONITOR_EDITABLE))
    if unknown:
        raise DomainError(
            "invalid",
            f"These monitor fields cannot be changed: {unknown}.",
            details={"fields": unknown, "editable": list(MONITOR_EDITABLE)},
        )
    with transaction.atomic():
        locked = Monitor.objects.select_for_update().select_related("version").get(pk=monitor.pk)
        before = {name: getattr(locked, name) for name in MONITOR_EDITABLE if name != "version"}
        before["version"] = locked.version.number
        merged = {name: getattr(locked, name) for name in MONITOR_EDITABLE}
        merged.update(changes)
        merged["alias"] = (merged["alias"] or "").strip()
        merged["version"] = _followed_version(
            model=locked.registered_model,
            alias=merged["alias"],
            # Following an alias: the version is the alias's unless one is named with it.
            version=changes.get("version") if merged["alias"] else merged["version"],
        )
        _check_baseline(
            baseline=merged["baseline"],
            baseline_days=merged["baseline_days"],
            metric_tolerance=merged["metric_tolerance"],
        )
        checks, weights = _monitor_settings_check(
            model=locked.registered_model,
            version=merged["version"],
            checks=merged["checks"],
            window_hours=merged["window_hours"],
            window_rows=merged["window_rows"],
            drift_method=merged["drift_method"],
            schedule_minutes=merged["schedule_minutes"],
            tests=merged["tests"],
            weights=merged["weights"],
        )
        name = merged["name"]
        if not isinstance(name, str) or not name:
            raise DomainError("invalid", "A monitor needs a name.", details={"name": "required"})
        if (
            name != locked.name
            and Monitor.objects.filter(registered_model_id=locked.registered_model_id, name=name)
            .exclude(pk=locked.pk)
            .exists()
        ):
            raise conflict(
                "exists", f"{locked.registered_model.name} already has a monitor named {name!r}."
            )
        if merged["min_rows"] < 1:
            raise DomainError("invalid", "min_rows must be at least 1.", details={"min_rows": 1})
        merged.update(
            checks=checks,
            weights=weights,
            # A partial change of thresholds keeps the others as they are.
            thresholds=_clean_thresholds(
                {**locked.thresholds, **(changes.get("thresholds") or {})}
            ),
            tests=merged["tests"] or {},
            notify=bool(merged["notify"]),
            request_retraining=bool(merged["request_retraining"]),
            enabled=bool(merged["enabled"]),
        )
        for field, value in merged.items():
            setattr(locked, field, value)
        locked.save()
        after = {name: getattr(locked, name) for name in MONITOR_EDITABLE if name != "version"}
        after["version"] = locked.version.number
        audit_record(
            actor=actor,
            action="monitoring.monitor.updated",
            obj=locked,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
        if before["version"] != after["version"]:
            reference_profile_request(version=locked.version)
    return locked


def monitor_follow(*, monitor: Monitor) -> Monitor:
    """Move a monitor that follows an alias onto the version the alias points at now.

    Called by each check before it reads its window (the worker's half), so that after
    a deployment moves ``production`` the next check judges what serves. A conditional
    UPDATE on the version read keeps two concurrent checks from both recording the move.
    Nothing changes when the alias is gone (the monitor keeps its last version) or has
    not moved. Returns ``monitor`` with ``version`` set to the one to judge.
    """
    if not monitor.alias:
        return monitor
    target = _alias_version(monitor.registered_model, monitor.alias)
    if target is None or target.pk == monitor.version_id:
        return monitor
    previous = monitor.version
    with transaction.atomic():
        moved = Monitor.objects.filter(pk=monitor.pk, version_id=previous.pk).update(version=target)
        if moved:
            audit_record(
                actor=WORKER,
                action="monitoring.monitor.follow",
                obj=monitor,
                before={"version": previous.number},
                after={"version": target.number, "alias": monitor.alias},
            )
            if set(monitor.checks) & DRIFT_CHECKS:
                reference_profile_request(version=target)  # the new version's baseline
    monitor.version = ModelVersion.objects.select_related("registered_model").get(
        pk=Monitor.objects.values_list("version_id", flat=True).get(pk=monitor.pk)
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
        # The batches of the version the check will judge (its alias's, if it follows one).
        judged = _alias_version(monitor.registered_model, monitor.alias) if monitor.alias else None
        newest = newest_batches(monitor, end, version=judged or monitor.version)
        start = min((b.first_at for b in newest), default=end)
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


# --- alerts ------------------------------------------------------------------------------


def _alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "alert": alert.pk,
        "model": alert.registered_model.name,
        "monitor": alert.monitor.name if alert.monitor else None,
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
                version=run.version or monitor.version,
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
        transaction.on_commit(lambda: alert_opened(kind))
    return alert, True


def alert_open_for_rollback(
    *, actor: Any, registered_model: RegisteredModel, message: str, details: dict[str, Any]
) -> Alert:
    """Open the alert of an automatic rollback (lifecycle's rollout controller calls it).

    Not deduplicated: each rollback is its own incident, and it has no monitor (nor a
    check run); ``details`` carries the deployment, the environment and the figures.
    Always announced (``monitoring.alert.opened``: mail and webhooks), as a rollback is
    never a monitor's quiet finding. Runs in the caller's transaction, so the alert
    exists if and only if the rollback does.
    """
    with transaction.atomic():
        alert = Alert.objects.create(
            registered_model=registered_model,
            monitor=None,
            kind=AlertKind.ROLLBACK,
            message=message[:4000],
            details=details,
        )
        audit_record(
            actor=actor,
            action="monitoring.alert.open",
            obj=alert,
            after={"kind": AlertKind.ROLLBACK, "message": alert.message},
        )
        publish_event("monitoring.alert.opened", _alert_payload(alert))
    return alert


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
            f"{_alert_origin(alert)} opened an alert on {model.name}:\n\n{alert.message}\n\n"
            f"Acknowledge or resolve it on the monitoring dashboard of {model.name}:\n"
            f"{absolute_url('monitoring:dashboard', model.name)}\n"
        ),
        from_email=None,
        recipient_list=sorted(recipients),
    )
    return len(recipients)


def _alert_origin(alert: Alert) -> str:
    if alert.monitor is None:
        return "The rollout controller"
    return f"Monitor {alert.monitor.name}"


def alert_acknowledge(*, actor: Any, alert: Alert) -> Alert:
    return _alert_transition(actor=actor, alert=alert, to=AlertStatus.ACKNOWLEDGED)


def alert_resolve(*, actor: Any, alert: Alert, comment: str = "") -> Alert:
    return _alert_transition(actor=actor, alert=alert, to=AlertStatus.RESOLVED, comment=comment)
