"""Running a check: the worker's half of a ``CheckRun``.

Reads the window's batches, computes data, prediction and label drift and
performance against the version's reference profile and baseline metrics,
stores the result on the run and raises an alert per breached threshold
(``services.alert_raise``), in one transaction.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction

from common.audit import audit_record
from common.jobs import job_finish
from monitoring import drift, outputs, performance, privacy
from monitoring.choices import (
    AlertKind,
    CheckKind,
    DriftMethod,
    MetricTolerance,
    PerformanceBaseline,
)
from monitoring.models import CheckRun, Monitor, PredictionBatch, ReferenceProfile
from monitoring.profiles import outputs_profile_load, predicted_profile, profile_load
from monitoring.services import DRIFT_CHECKS, WORKER, alert_raise, monitor_follow
from monitoring.windows import batch_rows, labelled_rows, window_batches
from registry import selectors as registry_selectors


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
    profile = profile_load(profile_row)
    # Batches stored under other column rules are not comparable (monitoring.privacy).
    comparable = privacy.summarized_on(batches, profile)
    skipped = len(batches) - len(comparable)
    left_out = {"left_out_batches": skipped} if skipped else {}
    batches = comparable
    rows = sum(b.row_count for b in batches)
    if (short := _too_few(monitor, rows)) is not None:
        return {**short, **left_out}
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
    return {**result.to_dict(), "status": "ok", **left_out}


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
    monitor: Monitor, job: CheckRun, batches: list[PredictionBatch], joined: Any
) -> dict[str, Any]:
    if (short := _too_few(monitor, len(joined), "labelled rows")) is not None:
        return {**short, "labelled": len(joined)}
    version = monitor.version
    classes = version.classes
    values = performance.compute_metrics(monitor.registered_model.task, joined, classes=classes)
    source = _baseline(monitor, job)
    baseline = {
        k: float(v)
        for k, v in (source.pop("values", None) or {}).items()
        if k in values and isinstance(v, int | float)
    }
    drops = {
        k: performance.metric_drop(
            k, baseline[k], v, relative=monitor.metric_tolerance == MetricTolerance.RELATIVE
        )
        for k, v in values.items()
        if v is not None and k in baseline
    }
    return {
        "status": "ok",
        "labelled": len(joined),
        "version": version.number,
        "values": values,
        "positive_class": version.positive_class,
        "baseline": baseline,
        "baseline_source": source,
        "drops": drops,
        "tolerance": monitor.metric_tolerance,
        "champion": _champion_metrics(monitor, batches),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _baseline(monitor: Monitor, job: CheckRun) -> dict[str, Any]:
    """What the window's metrics are compared with (``Monitor.baseline``).

    ``{"kind", "status", "label", "values", ...}``: ``status`` is ``ok`` when there are
    baseline values, else ``pending`` (the reference window is not over) or
    ``not_computable`` with a ``reason``; ``start``/``end``/``labelled`` describe a
    production window.
    """
    version = monitor.version
    days = monitor.baseline_days
    if monitor.baseline == PerformanceBaseline.HOLDOUT:
        values = {k: v for k, v in (version.metrics or {}).items() if v is not None}
        return {
            "kind": monitor.baseline,
            "status": "ok" if values else "not_computable",
            "label": f"training holdout of v{version.number}",
            "values": values,
            **({} if values else {"reason": f"v{version.number} recorded no metrics"}),
        }
    if monitor.baseline == PerformanceBaseline.TRAILING:
        end = job.window_start
        start = end - timedelta(days=days)
        label = f"trailing {days} d of v{version.number}"
        return _production_baseline(monitor, start, end, label)
    label = f"first {days} d of v{version.number} in production"
    cache = monitor.baseline_cache or {}
    if cache.get("version") == version.pk and cache.get("days") == days:
        # Kept once complete, so the retention sweep deleting the version's oldest
        # batches later does not move its reference window.
        return {"kind": monitor.baseline, "label": label, **cache["result"]}
    first = (
        PredictionBatch.objects.filter(version=version)
        .order_by("first_at")
        .values_list("first_at", flat=True)
        .first()
    )
    if first is None:
        return {"kind": monitor.baseline, "status": "pending", "label": label}
    start, end = first, first + timedelta(days=days)
    window = {"start": _iso(start), "end": _iso(end)}
    if job.window_start < end:
        return {
            "kind": monitor.baseline,
            "status": "pending",
            "label": label,
            **window,
            "reason": f"the reference window ends {end:%Y-%m-%d %H:%M} UTC; windows that "
            "start after it are compared with it",
        }
    result = _production_baseline(monitor, start, end, label)
    if result["status"] == "ok":
        # A complete reference window does not change (labels that come later are not
        # read again): keep its metrics rather than re-join its rows at every check.
        Monitor.objects.filter(pk=monitor.pk).update(
            baseline_cache={"version": version.pk, "days": days, "result": result}
        )
    return result


def _production_baseline(
    monitor: Monitor, start: datetime, end: datetime, label: str
) -> dict[str, Any]:
    """Metrics of the version's labelled rows in [start, end)."""
    version = monitor.version
    window = {"start": _iso(start), "end": _iso(end)}
    batches = list(
        PredictionBatch.objects.filter(
            version=version, last_at__gte=start, first_at__lt=end
        ).order_by("first_at", "pk")
    )
    joined = labelled_rows(monitor.registered_model, version, batches, columns=("timestamp",))
    if "timestamp" in joined and len(joined):
        stamps = pd.to_datetime(joined["timestamp"], utc=True)
        joined = joined[(stamps >= start) & (stamps < end)]
    if len(joined) < monitor.min_rows:
        return {
            "kind": monitor.baseline,
            "status": "not_computable",
            "label": label,
            **window,
            "labelled": len(joined),
            "reason": f"{len(joined)} labelled rows in the baseline window, fewer than "
            f"the minimum {monitor.min_rows}",
        }
    values = performance.compute_metrics(
        monitor.registered_model.task, joined, classes=version.classes
    )
    return {
        "kind": monitor.baseline,
        "status": "ok",
        "label": label,
        **window,
        "labelled": len(joined),
        "values": {k: v for k, v in values.items() if v is not None},
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
    # A monitor that follows an alias judges the version the alias points at now.
    monitor = monitor_follow(monitor=monitor)
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
            perf_out = _performance_result(monitor, job, batches, joined)
    breaches = _breaches(monitor, drift_out, output_out, perf_out)
    elapsed = time.monotonic() - started
    with transaction.atomic():
        job.version = monitor.version
        job.row_count = rows
        job.labelled_count = perf_out.get("labelled")
        job.drift_share = drift_out.get("drift_share")
        job.drift = drift_out
        job.output_drift = output_out
        job.metrics = perf_out
        job.breaches = breaches
        job.save(
            update_fields=[
                "version",
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
                "version": monitor.version.number,
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
                    "message": f"Performance of v{perf_out['version']} below its baseline "
                    f"({perf_out['baseline_source']['label']}): "
                    + ", ".join(
                        f"{k} {perf_out['values'][k]:.4f} vs {perf_out['baseline'][k]:.4f}"
                        for k in worse
                    ),
                    "details": {
                        "drops": worse,
                        "values": perf_out["values"],
                        "baseline": perf_out["baseline"],
                        "baseline_source": perf_out["baseline_source"],
                        "version": perf_out["version"],
                    },
                }
            )
    return breaches


def check_run_failed(*, job: CheckRun) -> None:
    """Failure handler: the run row already says failed; record it in the trail."""
    audit_record(
        actor=WORKER, action="monitoring.check.fail", obj=job, after={"error": job.error[-500:]}
    )
