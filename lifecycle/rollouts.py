"""Rollouts: blue/green, canary and shadow deployments, their controller and analysis.

A rollout is a ``Deployment`` with a strategy other than ``direct``. Its life:

1. ``deployment_start`` (``lifecycle.deployments``) checks the plan
   (``rollout_plan``: steps, hold time, thresholds) and queues the job.
2. The worker's ``deployment_run`` warms the version in every serving process,
   then hands over here (``after_warm``):
   - blue/green and canary first **replay** the environment's recently logged
     production requests against the candidate, offline on the worker
     (``_replay``); a failed replay fails the deployment before any caller
     sees the candidate;
   - blue/green then switches at once (``deployments._switch``);
   - a canary takes its first step (``canary_step``: share of the requests);
   - a shadow starts scoring its share of the requests beside stable.
   The job ends there; the rest is the controller's.
3. The **controller** is the beat sweep ``rollout_sweep`` (on a worker). A
   deployment that is due (``next_check_at`` passed) is checked in one
   transaction under the environment's lock (model, environment, then the
   deployment: the order of every writer here), re-reading its state, so two
   sweeps never both move it, and a worker killed in the middle leaves the
   transaction rolled back and the step due again: never half-switched.
   Each check analyses the interval's live traffic (``rollout_analysis``),
   records a ``RolloutAnalysis``, and advances, waits, pauses, promotes (the
   step after the last is 100 %: the switch) or rolls back, with the reason.
4. People: ``deployment_promote`` / ``_pause`` / ``_resume`` / ``_abort``.

The deployment's rollout fields (``step_index``, ``next_check_at``,
``failures``...) and ``Environment.frozen``/``automatic_rollbacks`` are
written only here; the environment's routing state only through
``deployments._apply``.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.audit import SystemActor, audit_record
from common.errors import DomainError, conflict
from common.events import publish_event
from common.jobs import job_finish
from common.permissions import require
from lifecycle import rollout_analysis as ra
from lifecycle import transitions as t
from lifecycle.deployments import (
    _apply,
    _deployment_state,
    _fail,
    _locked,
    _refused,
    _switch,
    deployment_mark_failed,
)
from lifecycle.models import (
    AnalysisKind,
    Deployment,
    DeploymentState,
    Environment,
    RolloutAnalysis,
    ServingLogBatch,
    Strategy,
)
from monitoring import services as monitoring_services
from registry.models import ModelVersion

logger = logging.getLogger(__name__)

PLAN_FIELDS = (
    "steps",
    "step_seconds",
    "thresholds",
    "shadow_share",
    "duration_seconds",
    "hold_seconds",
    "share",
    "end_after_labels",
    "metric",
)


def _controller(deployment: Deployment) -> SystemActor:
    return SystemActor(f"lifecycle.rollout#{deployment.pk}")


def default_thresholds() -> dict[str, float]:
    return ra.thresholds_valid(settings.ROLLOUT_THRESHOLDS, ra.DEFAULT_THRESHOLDS)


def rollout_plan(*, strategy: str, plan: dict[str, Any] | None) -> dict[str, Any]:
    """The deployment's rollout fields from a request's plan, checked; ``invalid`` (400)
    names the field. Fields that the strategy does not use are refused too."""
    plan = dict(plan or {})
    unknown = sorted(set(plan) - set(PLAN_FIELDS))
    if unknown:
        raise DomainError("invalid", f"Unknown field(s): {', '.join(unknown)}.", details={})
    uses = {
        Strategy.DIRECT: set(),
        Strategy.BLUE_GREEN: {"thresholds", "hold_seconds"},
        Strategy.CANARY: {"steps", "step_seconds", "thresholds", "metric"},
        Strategy.SHADOW: {"shadow_share", "duration_seconds", "thresholds", "end_after_labels"},
        Strategy.AB: {"share", "duration_seconds", "end_after_labels", "metric", "step_seconds"},
    }[strategy]
    given = {k for k, v in plan.items() if v is not None}
    if given - uses:
        field = sorted(given - uses)[0]
        raise DomainError(
            "invalid",
            f"A {strategy} deployment takes no {field}.",
            details={field: f"Not used by the {strategy} strategy."},
        )
    out: dict[str, Any] = {"thresholds": default_thresholds()}
    try:
        out["thresholds"] = ra.thresholds_valid(plan.get("thresholds"), out["thresholds"])
    except ValueError as exc:
        raise DomainError("invalid", str(exc), details={"thresholds": str(exc)}) from None
    if strategy == Strategy.CANARY:
        try:
            out["steps"] = t.steps_valid(
                plan["steps"] if plan.get("steps") is not None else list(t.DEFAULT_STEPS)
            )
        except t.TransitionRefused as exc:
            raise DomainError("invalid", exc.message, details={"steps": exc.message}) from None
        out["step_seconds"] = _seconds(
            plan.get("step_seconds"), settings.ROLLOUT_STEP_SECONDS, "step_seconds"
        )
        out["metric"] = _metric_name(plan)
    if strategy == Strategy.BLUE_GREEN and plan.get("hold_seconds") is not None:
        # A held blue/green: the candidate is previewed (asked for by version) for this
        # long, then switched; stored as the deployment's duration.
        out["duration_seconds"] = _seconds(plan["hold_seconds"], 0, "hold_seconds")
    if strategy == Strategy.AB:
        out.update(_ab_plan(plan))
    if strategy == Strategy.SHADOW:
        share = plan.get("shadow_share", 1.0)
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not 0 < float(share) <= 1
        ):
            raise DomainError(
                "invalid",
                "shadow_share is a number in (0, 1].",
                details={"shadow_share": "A number in (0, 1]."},
            )
        out["shadow_share"] = float(share)
        out["duration_seconds"] = _seconds(
            plan.get("duration_seconds"), settings.ROLLOUT_SHADOW_SECONDS, "duration_seconds"
        )
        out["end_after_labels"] = _labels_target(plan)
    return out


def _metric_name(plan: dict[str, Any]) -> str:
    """The metric a canary or an A/B experiment is judged on (blank: the retraining
    policy's primary metric, else the task's first); checked against the task later."""
    metric = plan.get("metric") or ""
    if not isinstance(metric, str) or len(metric) > 32:
        raise DomainError("invalid", "metric is a metric's name.", details={"metric": metric})
    return metric


def _ab_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """An A/B experiment: the candidate's share of a held split, for ``duration_seconds``
    or until ``end_after_labels`` labelled requests, judged every ``step_seconds`` on ``metric``."""
    share = plan.get("share", 0.5)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
        raise DomainError(
            "invalid", "share is a number in (0, 1).", details={"share": "A number in (0, 1)."}
        )
    labels = _labels_target(plan)
    metric = _metric_name(plan)
    return {
        "shadow_share": float(share),
        "duration_seconds": _seconds(
            plan.get("duration_seconds"), settings.ROLLOUT_AB_SECONDS, "duration_seconds"
        ),
        "step_seconds": _seconds(
            plan.get("step_seconds"), settings.ROLLOUT_STEP_SECONDS, "step_seconds"
        ),
        "end_after_labels": labels,
        "metric": metric,
    }


def _labels_target(plan: dict[str, Any]) -> int:
    labels = plan.get("end_after_labels") or 0
    if isinstance(labels, bool) or not isinstance(labels, int) or not 0 <= labels <= 10_000_000:
        raise DomainError(
            "invalid",
            "end_after_labels is a whole number of labelled requests (0: end by time only).",
            details={"end_after_labels": "A whole number from 0 to 10000000."},
        )
    return labels


def _seconds(value: Any, default: float, name: str) -> float:
    if value is None:
        return float(default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 7 * 86400:
        raise DomainError(
            "invalid",
            f"{name} is a number of seconds between 1 and 604800.",
            details={name: "Between 1 and 604800 seconds."},
        )
    return float(value)


def check_can_start(
    *, environment: Environment, strategy: str, preview: bool = False, metric: str = ""
) -> None:
    """Refusals that depend on the environment (called under its lock)."""
    if metric:
        from monitoring import performance

        names = performance.metric_names(environment.registered_model.task)
        if metric not in names:
            raise DomainError(
                "invalid",
                f"Metric {metric!r} does not apply to a {environment.registered_model.task} model.",
                details={"metric": metric, "metrics": list(names)},
            )
    if environment.frozen:
        raise conflict(
            "environment_frozen",
            f"{environment} is frozen after {environment.automatic_rollbacks} automatic "
            "rollbacks in a row; a person lifts the freeze first.",
            automatic_rollbacks=environment.automatic_rollbacks,
        )
    if (
        strategy in (Strategy.CANARY, Strategy.SHADOW, Strategy.AB) or preview
    ) and environment.stable_version_id is None:
        raise conflict(
            "no_stable_version",
            f"A {strategy} deployment {'held for a preview ' if preview else ''}compares "
            f"with the stable version; {environment} has none yet (deploy one directly first).",
        )
    if (
        strategy == Strategy.SHADOW
        and not ServingLogBatch.objects.filter(environment=environment).exists()
    ):
        raise conflict(
            "no_traffic",
            f"{environment} has served no logged traffic: a shadow would have nothing to score.",
        )


# --- reading the served traffic ----------------------------------------------------


def _rows(
    environment: Environment,
    version: ModelVersion,
    *,
    since: Any,
    until: Any,
    shadow: bool | None,
    limit: int | None = None,
) -> Any:
    from lifecycle.serving_logs import read_log

    batches = list(
        ServingLogBatch.objects.filter(
            environment=environment, version=version, last_at__gte=since
        ).order_by("first_at")
        if since is not None
        else _recent_batches(environment, version)
    )
    return read_log(batches, version=version.number, since=since, until=until, shadow=shadow)


def _recent_batches(environment: Environment, version: ModelVersion) -> Any:
    """The version's most recent serving log batches (what a replay replays)."""
    return ServingLogBatch.objects.filter(environment=environment, version=version).order_by(
        "-last_at"
    )[:50]


def _labelled_frame(
    environment: Environment,
    version: ModelVersion,
    *,
    since: Any,
    until: Any,
    columns: tuple[str, ...] = (),
) -> Any:
    """The version's requests in the interval that labels joined (monitoring's join by
    request id, on the prediction batches the serving log filed), with ``columns`` of the
    requests where they were logged; None when there are none."""
    from monitoring.windows import labelled_rows

    batches = [
        b.prediction_batch
        for b in ServingLogBatch.objects.filter(
            environment=environment,
            version=version,
            last_at__gte=since,
            first_at__lte=until,
            prediction_batch__isnull=False,
        ).select_related("prediction_batch")
    ]
    if not batches:
        return None
    frame = labelled_rows(environment.registered_model, version, batches, columns=columns)
    return None if frame.empty else frame


def _metric_rows(frame: Any) -> tuple[list[Any], list[Any], list[Any] | None] | None:
    """(labels, predictions, positive-class scores or None) of a labelled frame."""
    if frame is None:
        return None
    probability = frame.get("probability")
    scores = None if probability is None or probability.isna().any() else probability.tolist()
    return frame["label"].tolist(), frame["prediction"].tolist(), scores


def _fairness_rows(frame: Any, sensitive: list[str]) -> ra.Labelled | None:
    """A labelled frame's rows for the fairness check: the sensitive columns it carries."""
    if frame is None:
        return None

    def values(column: Any) -> list[Any]:
        # Whole numbers that the join widened to floats name their groups as logged (1, not 1.0).
        if column.dtype.kind == "f" and column.notna().all() and (column % 1 == 0).all():
            return column.astype("int64").tolist()
        return column.tolist()

    return ra.Labelled(
        labels=frame["label"].tolist(),
        predictions=frame["prediction"].tolist(),
        groups={c: values(frame[c]) for c in sensitive if c in frame.columns},
    )


def _sensitive_features(environment: Environment) -> list[str]:
    """The model's sensitive features: its retraining policy's ``sensitive_columns`` and
    every column its fairness audits named (``governance.selectors``)."""
    from governance.selectors import model_sensitive_attributes
    from lifecycle.models import RetrainingPolicy

    model = environment.registered_model
    policy = (
        RetrainingPolicy.objects.filter(registered_model_id=model.pk)
        .values_list("sensitive_columns", flat=True)
        .first()
    )
    names = [str(c) for c in policy or []] + model_sensitive_attributes(model=model)
    return list(dict.fromkeys(names))


def _judged_metric(environment: Environment, deployment: Deployment) -> str:
    """The metric a canary's steps and an A/B experiment are judged on, one precedence
    for both: the plan's ``metric``, else the retraining policy's primary metric (the
    metric its owner judges versions by), else the task's first (``common.metrics``)."""
    from lifecycle.models import RetrainingPolicy
    from monitoring import performance

    names = performance.metric_names(environment.registered_model.task)
    chosen = (
        deployment.metric
        or RetrainingPolicy.objects.filter(registered_model_id=environment.registered_model_id)
        .values_list("primary_metric", flat=True)
        .first()
    )
    return chosen if chosen in names else names[0]


def _sample(table: Any) -> ra.Sample:
    if table.num_rows == 0 or "status" not in table.column_names:
        return ra.Sample.of({})
    columns = {
        name: table.column(name).to_pylist()
        for name in ("status", "error_code", "latency_ms", "prediction", "probability")
        if name in table.column_names
    }
    return ra.Sample.of(columns)


# --- after the warm-up: replay, then the strategy's first move ------------------------


def after_warm(job: Deployment, report: dict[str, Any]) -> Deployment:
    """The worker's half once every serving process has the version warm."""
    deployment = Deployment.objects.select_related("environment", "version").get(pk=job.pk)
    strategy = deployment.strategy
    if strategy in (Strategy.BLUE_GREEN, Strategy.CANARY):
        verdict, reason = _replay(deployment)
        if verdict == ra.FAIL:
            return _fail(job, f"replay failed: {reason}; no caller saw the candidate")
    if strategy == Strategy.DIRECT or (
        strategy == Strategy.BLUE_GREEN and not deployment.duration_seconds
    ):
        return _switch(job, report)
    if strategy == Strategy.CANARY and deployment.steps[0] >= 100:
        return _switch(job, report)
    return _expose(job, report)


def _expose(job: Deployment, report: dict[str, Any]) -> Deployment:
    """A canary's first step, a shadow's start or a blue/green's preview: one transaction."""
    try:
        with transaction.atomic():
            environment = _locked(Deployment.objects.get(pk=job.pk).environment)
            deployment = Deployment.objects.select_for_update().get(pk=job.pk)
            if deployment.state != DeploymentState.WARMING:
                job_finish(job, log=f"deployment already {deployment.state}")
                return Deployment.objects.get(pk=job.pk)
            actor = deployment.requested_by
            now = timezone.now()
            if deployment.strategy in (Strategy.CANARY, Strategy.AB):
                ab = deployment.strategy == Strategy.AB
                share = deployment.shadow_share if ab else deployment.steps[0] / 100.0
                try:
                    new = t.canary_step(
                        environment.state(), version=deployment.version_id, share=share, step=1
                    )
                except t.TransitionRefused as exc:
                    raise _refused(exc) from None
                reason = (
                    f"A/B experiment: {share:.0%} of the requests to "
                    f"v{deployment.version.number}, held; no automatic promotion"
                    if ab
                    else f"canary step 1 of {len(deployment.steps)}: {deployment.steps[0]} %"
                )
                _apply(
                    environment,
                    new,
                    event=t.CANARY_STEP,
                    actor=actor,
                    reason=reason,
                    deployment=deployment,
                )
                deployment.step_index = 1
                deployment.next_check_at = now + timedelta(seconds=deployment.step_seconds)
            elif deployment.strategy == Strategy.BLUE_GREEN:
                try:
                    new = t.preview_started(environment.state(), version=deployment.version_id)
                except t.TransitionRefused as exc:
                    raise _refused(exc) from None
                reason = (
                    f"preview held {deployment.duration_seconds:g}s: v{deployment.version.number}"
                    " answers callers who ask for it; stable takes all traffic"
                )
                _apply(
                    environment,
                    new,
                    event=t.PREVIEW_STARTED,
                    actor=actor,
                    reason=reason,
                    deployment=deployment,
                )
                deployment.next_check_at = now + timedelta(seconds=deployment.duration_seconds)
            else:
                try:
                    new = t.shadow_started(
                        environment.state(),
                        version=deployment.version_id,
                        share=deployment.shadow_share,
                    )
                except t.TransitionRefused as exc:
                    raise _refused(exc) from None
                reason = f"shadow on {deployment.shadow_share:.0%} of the requests"
                _apply(
                    environment,
                    new,
                    event=t.SHADOW_STARTED,
                    actor=actor,
                    reason=reason,
                    deployment=deployment,
                )
                hold = deployment.duration_seconds
                if deployment.end_after_labels:  # looked at as labels arrive
                    hold = min(hold, settings.ROLLOUT_STEP_SECONDS)
                deployment.next_check_at = now + timedelta(seconds=hold)
            _deployment_state(deployment, DeploymentState.PROGRESSING)
            deployment.step_started_at = now
            deployment.warm_report = report
            deployment.save(
                update_fields=[
                    "state",
                    "step_index",
                    "step_started_at",
                    "next_check_at",
                    "warm_report",
                ]
            )
            job_finish(job, log=reason)
            audit_record(
                actor=actor,
                action="lifecycle.deployment.progressing",
                obj=deployment,
                after={"reason": reason, "warm_report": report},
            )
    except DomainError as exc:
        return _fail(job, exc.message)
    return Deployment.objects.get(pk=job.pk)


def _replay(deployment: Deployment) -> tuple[str, str]:
    """Score the environment's recent logged requests with the candidate, offline.

    The stable version's logged answers are the reference: disagreement,
    prediction PSI, and errors and latency (both versions scored here, one row
    at a time, so their latencies compare like with like). Recorded as the
    deployment's first analysis. Too few logged rows: inconclusive, and the
    rollout goes on (said in the analysis).
    """
    from lifecycle import scoring
    from lifecycle.serving import load_version
    from lifecycle.serving_logs import META_COLUMNS

    environment = deployment.environment
    thresholds = {**default_thresholds(), **deployment.thresholds}
    stable = environment.stable_version
    analysis: dict[str, Any]
    if stable is None:
        analysis = {"verdict": ra.INCONCLUSIVE, "reason": "no stable version", "checks": {}}
    else:
        table = _rows(environment, stable, since=None, until=None, shadow=False)
        if table.num_rows:
            table = table.filter(np.asarray(table.column("status").to_pylist()) == 200)
        limit = settings.ROLLOUT_REPLAY_ROWS
        if table.num_rows > limit:
            table = table.slice(table.num_rows - limit)
        if table.num_rows == 0:
            analysis = {
                "verdict": ra.INCONCLUSIVE,
                "reason": "no logged production requests to replay",
                "checks": {},
            }
        else:
            candidate_model = load_version(deployment.version_id)
            stable_model = load_version(stable.pk)
            logged = table.column("prediction").to_pylist()
            names = [s.name for s in candidate_model.specs]
            feature_columns = {}
            for name in names:
                column = f"feature:{name}" if name in META_COLUMNS else name
                if column not in table.column_names:
                    return _record_replay(
                        deployment,
                        {
                            "verdict": ra.FAIL,
                            "reason": f"the logged requests lack the candidate's input {name!r}",
                            "checks": {},
                        },
                    )
                feature_columns[name] = table.column(column).to_pylist()
            rows = {"c": _new_rows(), "s": _new_rows()}
            for i in range(table.num_rows):
                for side, model in (("c", candidate_model), ("s", stable_model)):
                    started = time.perf_counter()
                    try:
                        arrays = {
                            spec.name: scoring.to_array([feature_columns[spec.name][i]], spec)
                            for spec in model.specs
                        }
                        predictions, proba = model.predict(arrays)
                        status, code = 200, ""
                        p = (
                            float(proba[0, model.positive])
                            if (proba is not None and model.positive is not None)
                            else None
                        )
                        prediction = predictions[0]
                    except Exception:
                        status, code, prediction, p = 422, "prediction_failed", None, None
                    rows[side]["latency_ms"].append((time.perf_counter() - started) * 1000)
                    rows[side]["status"].append(status)
                    rows[side]["error_code"].append(code)
                    rows[side]["prediction"].append(prediction)
                    rows[side]["probability"].append(p)
            # The stable side's answers are what it told callers (the logged ones).
            rows["s"]["prediction"] = logged
            # Where labels have joined the replayed requests: each side's metric and
            # fairness gap on the same labelled rows (stable: what it answered).
            ids = table.column("request_id").to_pylist()
            recent = ServingLogBatch.objects.filter(
                pk__in=list(_recent_batches(environment, stable).values_list("pk", flat=True))
            )
            sensitive = _sensitive_features(environment)
            labelled = _same_rows_labelled(
                ids,
                _labels_of(environment, stable, recent),
                (rows["s"], rows["c"]),
                _logged_columns(table, sensitive),
            )
            analysis = ra.analyse_paired(
                ra.Sample.of(rows["s"]),
                ra.Sample.of(rows["c"]),
                thresholds,
                task=environment.registered_model.task,
                labelled=tuple(side.metric_rows() if side else None for side in labelled),
                metric=_judged_metric(environment, deployment),
                classes=(stable.classes, deployment.version.classes),
                fairness=labelled,
                sensitive=sensitive,
            )
            analysis["rows"] = table.num_rows
            if analysis["verdict"] == ra.FAIL:
                analysis["reason"] = "; ".join(
                    ra._describe(n, analysis["checks"][n]) for n in ra.failed_checks(analysis)
                )
    return _record_replay(deployment, analysis)


def _new_rows() -> dict[str, list]:
    return {k: [] for k in ("status", "error_code", "latency_ms", "prediction", "probability")}


def _record_replay(deployment: Deployment, analysis: dict[str, Any]) -> tuple[str, str]:
    verdict = analysis["verdict"]
    reason = analysis.get("reason", "") or ("all checks passed" if verdict == ra.PASS else "")
    decision = {"fail": "stop", "pass": "expose", "inconclusive": "expose"}[verdict]
    with transaction.atomic():
        RolloutAnalysis.objects.create(
            deployment=deployment,
            kind=AnalysisKind.REPLAY,
            verdict=verdict,
            decision=decision,
            reason=reason,
            figures=_jsonable(analysis),
            window_end=timezone.now(),
        )
        audit_record(
            actor=_controller(deployment),
            action="lifecycle.deployment.replayed",
            obj=deployment,
            after={"verdict": verdict, "reason": reason},
        )
    return verdict, reason


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# --- the controller ---------------------------------------------------------------------


def rollout_sweep() -> int:
    """Beat: check every live rollout that is due; returns how many were checked."""
    now = timezone.now()
    due = list(
        Deployment.objects.filter(
            state=DeploymentState.PROGRESSING, next_check_at__lte=now
        ).values_list("pk", flat=True)
    )
    done = 0
    for pk in due:
        try:
            if rollout_check(deployment_id=pk):
                done += 1
        except DomainError as exc:
            # Refused for good (the gate at promotion: an approval expired, a right
            # revoked): the rollout fails with the reason, its candidate loses its
            # traffic, rather than coming back due forever.
            with transaction.atomic():
                deployment_mark_failed(
                    deployment=Deployment.objects.get(pk=pk), reason=f"{exc.message}"
                )
            done += 1
        except Exception:
            # One rollout's trouble never stops the others; it stays due and is retried.
            logger.exception("rollout check of deployment %s failed", pk)
    return done


def rollout_check(*, deployment_id: int) -> bool:
    """Analyse one due rollout and move it on (one transaction; False: not due any more)."""
    with transaction.atomic():
        environment = _locked(Deployment.objects.get(pk=deployment_id).environment)
        deployment = (
            Deployment.objects.select_for_update().select_related("version").get(pk=deployment_id)
        )
        now = timezone.now()
        if (
            deployment.state != DeploymentState.PROGRESSING
            or deployment.next_check_at is None
            or deployment.next_check_at > now
        ):
            return False
        if deployment.strategy == Strategy.CANARY:
            _canary_check(environment, deployment, now)
        elif deployment.strategy == Strategy.SHADOW:
            _shadow_check(environment, deployment, now)
        elif deployment.strategy == Strategy.AB:
            _ab_check(environment, deployment, now)
        elif deployment.strategy == Strategy.BLUE_GREEN:  # the hold ran out: switch
            _promote(
                environment,
                deployment,
                _controller(deployment),
                f"preview held {deployment.duration_seconds:g}s; switched",
            )
        else:  # nothing else is ever progressing; never leave it due forever
            deployment.next_check_at = None
            deployment.save(update_fields=["next_check_at"])
    return True


def _canary_check(environment: Environment, deployment: Deployment, now: Any) -> None:
    thresholds = {**default_thresholds(), **deployment.thresholds}
    since = deployment.step_started_at
    stable = environment.stable_version
    candidate = deployment.version
    task = environment.registered_model.task
    sensitive = _sensitive_features(environment)
    frames = [
        _labelled_frame(environment, v, since=since, until=now, columns=tuple(sensitive))
        for v in (stable, candidate)
    ]
    analysis = ra.analyse_live(
        _sample(_rows(environment, stable, since=since, until=now, shadow=False)),
        _sample(_rows(environment, candidate, since=since, until=now, shadow=False)),
        thresholds,
        labelled=(_metric_rows(frames[0]), _metric_rows(frames[1])),
        task=task,
        metric=_judged_metric(environment, deployment),
        classes=(stable.classes, candidate.classes),
        fairness=(_fairness_rows(frames[0], sensitive), _fairness_rows(frames[1], sensitive)),
        sensitive=sensitive,
    )
    action, failures, why = ra.rollout_decision(
        deployment.failures,
        analysis,
        inconclusive_in_row=deployment.inconclusive_in_row,
        inconclusive_limit=settings.ROLLOUT_INCONCLUSIVE_LIMIT,
    )
    deployment.failures = failures
    step = deployment.step_index
    share = deployment.steps[step - 1] / 100.0
    if action == "advance":
        next_percent = deployment.steps[step]
        action = "promote" if next_percent >= 100 else "advance"
    _record(deployment, AnalysisKind.STEP, analysis, action, why, since, now, step, share)
    actor = _controller(deployment)
    if action == "promote":
        _promote(environment, deployment, actor, f"canary passed {step} step(s): {why}")
    elif action == "advance":
        reason = (
            f"step {step} passed ({why}); step {step + 1} of {len(deployment.steps)}: "
            f"{deployment.steps[step]} %"
        )
        try:
            new = t.canary_step(
                environment.state(),
                version=deployment.version_id,
                share=deployment.steps[step] / 100.0,
                step=step + 1,
            )
        except t.TransitionRefused as exc:
            raise _refused(exc) from None
        _apply(
            environment, new, event=t.CANARY_STEP, actor=actor, reason=reason, deployment=deployment
        )
        deployment.step_index = step + 1
        deployment.step_started_at = now
        deployment.inconclusive_in_row = 0
        deployment.next_check_at = now + timedelta(seconds=deployment.step_seconds)
        deployment.save(
            update_fields=[
                "failures",
                "step_index",
                "step_started_at",
                "inconclusive_in_row",
                "next_check_at",
            ]
        )
    elif action == "rollback":
        _roll_back(environment, deployment, actor, why, automatic=True, analysis=analysis)
    elif action == "pause":
        _deployment_state(deployment, DeploymentState.PAUSED)
        deployment.next_check_at = None
        deployment.inconclusive_in_row += 1
        deployment.reason = why[:4000]
        deployment.save(
            update_fields=["state", "failures", "next_check_at", "inconclusive_in_row", "reason"]
        )
        audit_record(
            actor=actor, action="lifecycle.deployment.paused", obj=deployment, after={"reason": why}
        )
        _event(deployment, "paused", why)
    else:  # wait: analyse a fresh interval at the same step
        if analysis["verdict"] == ra.INCONCLUSIVE:
            deployment.inconclusive_in_row += 1
        else:
            deployment.inconclusive_in_row = 0
            deployment.step_started_at = now
        deployment.next_check_at = now + timedelta(seconds=deployment.step_seconds)
        deployment.save(
            update_fields=["failures", "inconclusive_in_row", "step_started_at", "next_check_at"]
        )


def _shadow_check(environment: Environment, deployment: Deployment, now: Any) -> None:
    """A shadow that ran its time (or, with ``end_after_labels``, whose paired requests
    labels have joined that many): pair stable's answers with the shadow's, judge, end.
    Before either, it is looked at again every ``ROLLOUT_STEP_SECONDS``."""
    thresholds = {**default_thresholds(), **deployment.thresholds}
    since = deployment.step_started_at
    stable_rows = _rows(
        environment, environment.stable_version, since=since, until=now, shadow=False
    )
    shadow_rows = _rows(environment, deployment.version, since=since, until=now, shadow=True)
    paired_stable, paired_shadow = _pair(stable_rows, shadow_rows)
    task = environment.registered_model.task
    labels = _labels_by_request(environment, since, now) if task != "regression" else {}
    sensitive = _sensitive_features(environment)
    labelled = _same_rows_labelled(
        paired_stable["request_id"],
        labels,
        (paired_stable, paired_shadow),
        _logged_columns(stable_rows, sensitive),
    )
    analysis = ra.analyse_paired(
        ra.Sample.of(paired_stable),
        ra.Sample.of(paired_shadow),
        thresholds,
        task=task,
        labelled=tuple(side.metric_rows() if side else None for side in labelled),
        metric=_judged_metric(environment, deployment),
        classes=(environment.stable_version.classes, deployment.version.classes),
        fairness=labelled,
        sensitive=sensitive,
    )
    analysis.update(_shadow_extras(environment, stable_rows, shadow_rows, labels, thresholds))
    end = since + timedelta(seconds=deployment.duration_seconds)
    by_labels = bool(deployment.end_after_labels) and (
        analysis.get("labelled", 0) >= deployment.end_after_labels
    )
    if now < end and not by_labels:  # labels still to come: look again later
        deployment.next_check_at = min(now + timedelta(seconds=settings.ROLLOUT_STEP_SECONDS), end)
        deployment.save(update_fields=["next_check_at"])
        return
    failed = analysis["verdict"] == ra.FAIL
    why = (
        "; ".join(ra._describe(n, analysis["checks"][n]) for n in ra.failed_checks(analysis))
        if failed
        else (analysis.get("reason") or "all checks passed")
    )
    _record(
        deployment,
        AnalysisKind.SHADOW,
        analysis,
        "end",
        why,
        since,
        now,
        0,
        deployment.shadow_share,
    )
    actor = _controller(deployment)
    ran = (
        f"{analysis['labelled']} labelled requests"
        if by_labels
        else f"{deployment.duration_seconds:g}s"
    )
    reason = f"shadow ended after {ran}: {why}"
    _apply(
        environment,
        t.shadow_ended(environment.state()),
        event=t.SHADOW_ENDED,
        actor=actor,
        reason=reason,
        deployment=deployment,
    )
    _finish(
        deployment,
        DeploymentState.ROLLED_BACK if failed else DeploymentState.SUCCEEDED,
        reason,
        actor,
    )
    if failed:  # the shadow's candidate is dropped: alerted as any automatic rollback
        _rollback_alert(environment, deployment, actor, reason, analysis)


def ab_figures(environment: Environment, deployment: Deployment, until: Any) -> dict[str, Any]:
    """Monitoring's A/B comparison (significance test and verdict) of stable (A) against
    the candidate (B) on the labelled requests each served since the split began."""
    from monitoring import performance
    from monitoring.windows import labelled_rows

    model = environment.registered_model
    metric = _judged_metric(environment, deployment)
    frames, classes = {}, {}
    for arm, version in (("a", environment.stable_version), ("b", deployment.version)):
        batches = [
            b.prediction_batch
            for b in ServingLogBatch.objects.filter(
                environment=environment,
                version=version,
                last_at__gte=deployment.step_started_at,
                first_at__lte=until,
                prediction_batch__isnull=False,
            ).select_related("prediction_batch")
        ]
        frames[arm] = labelled_rows(model, version, batches)
        classes[arm] = version.classes
    result = performance.ab_compare(
        metric, frames["a"], frames["b"], classes_a=classes["a"], classes_b=classes["b"]
    )
    result.update(
        version_a=environment.stable_version.number,
        version_b=deployment.version.number,
        labelled=result["n_a"] + result["n_b"],
    )
    return result


def _ab_check(environment: Environment, deployment: Deployment, now: Any) -> None:
    """An A/B interval: record the comparison; at the end (time, or labelled requests)
    hold the split and pause for a person, who promotes either side. Never promotes."""
    figures = ab_figures(environment, deployment, now)
    started = deployment.step_started_at
    by_time = (now - started).total_seconds() >= deployment.duration_seconds
    by_labels = (
        bool(deployment.end_after_labels) and figures["labelled"] >= deployment.end_after_labels
    )
    ended = by_time or by_labels
    verdict = {"a": "a", "b": "b"}.get(figures.get("winner") or "", "none")
    why = figures["verdict"]
    if ended:
        end = (
            f"{figures['labelled']} labelled requests"
            if by_labels
            else f"{deployment.duration_seconds:g}s"
        )
        why = f"A/B experiment ended after {end}: {why} A person promotes either side."
    analysis = {"verdict": verdict, "comparison": figures}
    _record(
        deployment,
        AnalysisKind.AB,
        analysis,
        "end" if ended else "wait",
        why,
        started,
        now,
        1,
        deployment.shadow_share,
    )
    if ended:
        _deployment_state(deployment, DeploymentState.PAUSED)
        deployment.next_check_at = None
        deployment.reason = why[:4000]
        deployment.save(update_fields=["state", "next_check_at", "reason"])
        actor = _controller(deployment)
        audit_record(
            actor=actor, action="lifecycle.deployment.paused", obj=deployment, after={"reason": why}
        )
        _event(deployment, "paused", why)
    else:
        deployment.next_check_at = min(
            now + timedelta(seconds=deployment.step_seconds),
            started + timedelta(seconds=deployment.duration_seconds),
        )
        deployment.save(update_fields=["next_check_at"])


def _shadow_extras(
    environment: Environment,
    stable_rows: Any,
    shadow_rows: Any,
    labels: dict[str, Any],
    thresholds: dict[str, float],
) -> dict[str, Any]:
    """A shadow's figures beside its checks, on the requests both answered: agreement by
    each categorical input's value, and McNemar's test once labels have joined at least
    ``min_labels`` of them (monitoring's join by request id, on stable's requests)."""
    from lifecycle.serving_logs import META_COLUMNS

    def answered(table: Any) -> dict[str, dict[str, Any]]:
        if table.num_rows == 0 or "request_id" not in table.column_names:
            return {}
        names = [
            f.name
            for f in table.schema
            if f.name in ("request_id", "status", "prediction")
            or (
                f.name not in META_COLUMNS
                and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
            )
        ]
        columns = {n: table.column(n).to_pylist() for n in names}
        return {
            rid: {n: columns[n][i] for n in names}
            for i, rid in enumerate(columns["request_id"])
            if columns["status"][i] == 200
        }

    a, b = answered(stable_rows), answered(shadow_rows)
    ids = [rid for rid in a if rid in b]
    stable_pred = [a[r]["prediction"] for r in ids]
    shadow_pred = [b[r]["prediction"] for r in ids]
    categorical = sorted(
        {n for row in list(a.values())[:1] for n in row} - {"request_id", "status", "prediction"}
    )
    segments = ra.agreement_by_segment(
        {c: [a[r].get(c) for r in ids] for c in categorical}, stable_pred, shadow_pred
    )
    out: dict[str, Any] = {"segments": segments, "paired": len(ids)}
    if environment.registered_model.task == "regression":
        return out
    labelled = [r for r in ids if r in labels]
    out["labelled"] = len(labelled)
    if len(labelled) < thresholds["min_labels"]:
        out["mcnemar"] = {
            "skipped": f"{len(labelled)} labelled requests, fewer than "
            f"{int(thresholds['min_labels'])}"
        }
    else:
        out["mcnemar"] = ra.mcnemar(
            [labels[r] for r in labelled],
            [a[r]["prediction"] for r in labelled],
            [b[r]["prediction"] for r in labelled],
        )
    return out


def _labels_by_request(environment: Environment, since: Any, until: Any) -> dict[str, Any]:
    """Labels of stable's requests in the interval, by request id (monitoring's join)."""
    stable = environment.stable_version
    return _labels_of(
        environment,
        stable,
        ServingLogBatch.objects.filter(
            environment=environment, version=stable, last_at__gte=since, first_at__lte=until
        ),
    )


def _labels_of(environment: Environment, version: ModelVersion, log_batches: Any) -> dict[str, Any]:
    """Labels of the requests of these serving log batches, by request id."""
    from monitoring.windows import labelled_rows

    batches = [
        b.prediction_batch
        for b in log_batches.filter(prediction_batch__isnull=False).select_related(
            "prediction_batch"
        )
    ]
    frame = labelled_rows(environment.registered_model, version, batches)
    if frame.empty:
        return {}
    return dict(zip(frame["request_id"].tolist(), frame["label"].tolist(), strict=True))


def _logged_columns(table: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """The logged values of the input columns ``names`` that the table carries, by column
    and request id (an input named like a log column is logged as ``feature:<name>``)."""
    from lifecycle.serving_logs import META_COLUMNS

    if table.num_rows == 0 or "request_id" not in table.column_names:
        return {}
    ids = table.column("request_id").to_pylist()
    out = {}
    for name in names:
        column = f"feature:{name}" if name in META_COLUMNS else name
        if column in table.column_names:
            out[name] = dict(zip(ids, table.column(column).to_pylist(), strict=True))
    return out


def _same_rows_labelled(
    ids: list[str],
    labels: dict[str, Any],
    sides: tuple[dict[str, list], dict[str, list]],
    groups: dict[str, dict[str, Any]],
) -> tuple[ra.Labelled | None, ra.Labelled | None]:
    """The labelled rows of a replay or a shadow: the same requests (row i of each side),
    those both answered that labels joined, with their sensitive features and scores.
    Predictions compare as strings when the labels do (monitoring's join casts classes)."""
    stable, candidate = sides
    keep = [
        i
        for i, rid in enumerate(ids)
        if rid in labels and stable["status"][i] == 200 and candidate["status"][i] == 200
    ]
    if not keep:
        return None, None
    truth = [labels[ids[i]] for i in keep]
    as_text = any(isinstance(v, str) for v in truth)
    values = {c: [by_id.get(ids[i]) for i in keep] for c, by_id in groups.items()}

    def side(rows: dict[str, list]) -> ra.Labelled:
        predicted = [rows["prediction"][i] for i in keep]
        scores = [rows["probability"][i] for i in keep] if rows.get("probability") else None
        return ra.Labelled(
            truth,
            [str(v) for v in predicted] if as_text else predicted,
            values,
            None if scores is None or any(v is None for v in scores) else scores,
        )

    return side(stable), side(candidate)


def _pair(stable: Any, shadow: Any) -> tuple[dict[str, list], dict[str, list]]:
    """Rows of the same request ids, in the same order (request i of each is the same)."""
    names = ("status", "error_code", "latency_ms", "prediction", "probability")

    def by_id(table: Any) -> dict[str, dict[str, Any]]:
        if table.num_rows == 0 or "request_id" not in table.column_names:
            return {}
        columns = {n: table.column(n).to_pylist() for n in names if n in table.column_names}
        ids = table.column("request_id").to_pylist()
        return {rid: {n: columns[n][i] for n in columns} for i, rid in enumerate(ids)}

    a, b = by_id(stable), by_id(shadow)
    common = [rid for rid in a if rid in b]
    return (
        {"request_id": common, **{n: [a[r].get(n) for r in common] for n in names}},
        {"request_id": common, **{n: [b[r].get(n) for r in common] for n in names}},
    )


def _record(
    deployment: Deployment,
    kind: str,
    analysis: dict[str, Any],
    decision: str,
    reason: str,
    since: Any,
    until: Any,
    step: int,
    share: float,
) -> RolloutAnalysis:
    row = RolloutAnalysis.objects.create(
        deployment=deployment,
        kind=kind,
        step_index=step,
        share=share,
        verdict=analysis["verdict"],
        decision=decision,
        reason=reason[:4000],
        figures=_jsonable(analysis),
        window_start=since,
        window_end=until,
    )
    audit_record(
        actor=_controller(deployment),
        action="lifecycle.deployment.analysed",
        obj=deployment,
        after={
            "kind": kind,
            "step": step,
            "verdict": analysis["verdict"],
            "decision": decision,
            "reason": reason,
        },
    )
    return row


def _event(deployment: Deployment, what: str, reason: str) -> None:
    environment = deployment.environment
    publish_event(
        f"lifecycle.deployment.{what}",
        {
            "model": environment.registered_model.name,
            "environment": environment.name,
            "deployment": deployment.pk,
            "version": deployment.version.number,
            "strategy": deployment.strategy,
            "reason": reason,
        },
    )


def _finish(deployment: Deployment, state: str, reason: str, actor: Any) -> None:
    _deployment_state(deployment, state)
    deployment.reason = reason[:4000]
    deployment.next_check_at = None
    fields = ["state", "reason", "next_check_at", "failures", "inconclusive_in_row"]
    if state == DeploymentState.SUCCEEDED and deployment.strategy in (
        Strategy.CANARY,
        Strategy.BLUE_GREEN,
        Strategy.AB,
    ):
        deployment.switched_at = timezone.now()
        fields.append("switched_at")
    deployment.save(update_fields=fields)
    audit_record(
        actor=actor,
        action=f"lifecycle.deployment.{state}",
        obj=deployment,
        after={"reason": deployment.reason, "version": deployment.version.number},
    )
    _event(deployment, state, reason)


def _promote(environment: Environment, deployment: Deployment, actor: Any, reason: str) -> None:
    try:
        new = t.switched(environment.state(), version=deployment.version_id)
    except t.TransitionRefused as exc:
        raise _refused(exc) from None
    _apply(environment, new, event=t.SWITCHED, actor=actor, reason=reason, deployment=deployment)
    environment.automatic_rollbacks = 0
    environment.save(update_fields=["automatic_rollbacks"])
    _finish(deployment, DeploymentState.SUCCEEDED, reason, actor)


def _roll_back(
    environment: Environment,
    deployment: Deployment,
    actor: Any,
    why: str,
    *,
    automatic: bool,
    analysis: dict[str, Any] | None = None,
) -> None:
    """The candidate loses its traffic at once; stable never changes (so an automatic
    rollback never goes past a version that a person promoted). An automatic one also
    opens a monitoring alert with the figures."""
    reason = f"automatic rollback: {why}" if automatic else why
    try:
        new = t.rolled_back(environment.state(), earlier=None)
    except t.TransitionRefused as exc:
        raise _refused(exc) from None
    _apply(environment, new, event=t.ROLLED_BACK, actor=actor, reason=reason, deployment=deployment)
    state = DeploymentState.ROLLED_BACK if automatic else DeploymentState.ABORTED
    _finish(deployment, state, reason, actor)
    if automatic:
        _rollback_alert(environment, deployment, actor, reason, analysis)
        environment.automatic_rollbacks += 1
        fields = ["automatic_rollbacks"]
        if (
            environment.automatic_rollbacks >= settings.ROLLOUT_FREEZE_AFTER
            and not environment.frozen
        ):
            environment.frozen = True
            fields.append("frozen")
            audit_record(
                actor=actor,
                action="lifecycle.environment.frozen",
                obj=environment,
                after={"automatic_rollbacks": environment.automatic_rollbacks},
            )
            _event(deployment, "environment_frozen", reason)
        environment.save(update_fields=fields)


def _rollback_alert(
    environment: Environment,
    deployment: Deployment,
    actor: Any,
    reason: str,
    analysis: dict[str, Any] | None,
) -> None:
    """The alert of an automatic rollback, opened by monitoring's service (its one writer
    of alerts) in this transaction: it exists if and only if the rollback does."""
    checks = (analysis or {}).get("checks", {})
    model = environment.registered_model
    monitoring_services.alert_open_for_rollback(
        actor=actor,
        registered_model=model,
        message=(
            f"{model.name} v{deployment.version.number} ({deployment.strategy}) in "
            f"{environment.name}: {reason}"
        ),
        details=_jsonable(
            {
                "deployment": deployment.pk,
                "environment": environment.name,
                "version": deployment.version.number,
                "stable_version": (
                    environment.stable_version.number if environment.stable_version else None
                ),
                "strategy": deployment.strategy,
                "step": deployment.step_index,
                "reason": reason,
                "failed_checks": ra.failed_checks(analysis) if analysis else [],
                "checks": checks,
            }
        ),
    )


# --- people: promote, pause, resume, abort, lift a freeze ---------------------------------


def _for_person(actor: Any, deployment: Deployment) -> tuple[Environment, Deployment]:
    require(actor, "deploy", deployment.environment.registered_model)
    environment = _locked(deployment.environment)
    locked = Deployment.objects.select_for_update().select_related("version").get(pk=deployment.pk)
    if locked.strategy not in (
        Strategy.CANARY,
        Strategy.SHADOW,
        Strategy.BLUE_GREEN,
        Strategy.AB,
    ) or (locked.strategy == Strategy.BLUE_GREEN and not locked.duration_seconds):
        raise conflict(
            "not_a_rollout",
            f"A {locked.strategy} deployment has no steps to promote, pause, resume or abort.",
            strategy=locked.strategy,
        )
    return environment, locked


def _refuse_state(deployment: Deployment, to: str, what: str) -> None:
    try:
        t.deployment_next(deployment.state, to)
    except t.TransitionRefused as exc:
        raise conflict(
            "invalid_transition",
            f"A {deployment.state} deployment cannot be {what}.",
            **exc.details,
        ) from None


@transaction.atomic
def deployment_promote(
    *, actor: Any, deployment: Deployment, reason: str = "", version: int | None = None
) -> Deployment:
    """Promote a canary, or a held blue/green's preview, now: the candidate takes all
    the traffic in one switch. An A/B experiment is ended by promoting either side:
    ``version`` the candidate's number (or None) switches to it, the stable one's keeps
    stable and removes the candidate (the deployment ends ``aborted``, with why)."""
    environment, deployment = _for_person(actor, deployment)
    if deployment.strategy == Strategy.SHADOW:
        _refuse_state(deployment, DeploymentState.SUCCEEDED, "promoted")
        raise conflict(
            "invalid_transition",
            "A shadow is not promoted: deploy its version with a strategy that sends it traffic.",
        )
    stable = environment.stable_version
    if version is not None and version != deployment.version.number:
        if deployment.strategy != Strategy.AB or stable is None or version != stable.number:
            raise DomainError(
                "invalid",
                f"version is the candidate's number ({deployment.version.number})"
                + (
                    f" or, for an A/B experiment, the stable one's ({stable.number})"
                    if deployment.strategy == Strategy.AB and stable
                    else ""
                )
                + ".",
                details={"version": version},
            )
        _refuse_state(deployment, DeploymentState.ABORTED, "ended")
        _roll_back(
            environment,
            deployment,
            actor,
            reason or f"A/B experiment ended by {actor}: kept the stable v{stable.number}",
            automatic=False,
        )
        return deployment
    _refuse_state(deployment, DeploymentState.SUCCEEDED, "promoted")
    _promote(environment, deployment, actor, reason or f"promoted by {actor}")
    return deployment


@transaction.atomic
def deployment_pause(*, actor: Any, deployment: Deployment, reason: str = "") -> Deployment:
    """Hold the rollout where it is: the traffic split stays, no analysis moves it."""
    _environment, deployment = _for_person(actor, deployment)
    _refuse_state(deployment, DeploymentState.PAUSED, "paused")
    _deployment_state(deployment, DeploymentState.PAUSED)
    deployment.next_check_at = None
    deployment.reason = (reason or f"paused by {actor}")[:4000]
    deployment.save(update_fields=["state", "next_check_at", "reason"])
    audit_record(
        actor=actor,
        action="lifecycle.deployment.paused",
        obj=deployment,
        after={"reason": deployment.reason},
    )
    _event(deployment, "paused", deployment.reason)
    return deployment


@transaction.atomic
def deployment_resume(*, actor: Any, deployment: Deployment) -> Deployment:
    """Go on from the current step, with a fresh analysis interval."""
    _environment, deployment = _for_person(actor, deployment)
    _refuse_state(deployment, DeploymentState.PROGRESSING, "resumed")
    now = timezone.now()
    _deployment_state(deployment, DeploymentState.PROGRESSING)
    hold = {
        Strategy.CANARY: deployment.step_seconds,
        Strategy.BLUE_GREEN: deployment.duration_seconds,  # a fresh hold of the preview
    }.get(deployment.strategy, 0)
    deployment.step_started_at = (
        now if deployment.strategy == Strategy.CANARY else deployment.step_started_at
    )
    deployment.inconclusive_in_row = 0
    deployment.next_check_at = now + timedelta(seconds=hold)
    deployment.reason = ""
    deployment.save(
        update_fields=["state", "step_started_at", "inconclusive_in_row", "next_check_at", "reason"]
    )
    audit_record(actor=actor, action="lifecycle.deployment.resumed", obj=deployment)
    _event(deployment, "resumed", "")
    return deployment


@transaction.atomic
def deployment_abort(*, actor: Any, deployment: Deployment, reason: str = "") -> Deployment:
    """Stop the rollout: all traffic back to the stable version at once."""
    environment, deployment = _for_person(actor, deployment)
    _refuse_state(deployment, DeploymentState.ABORTED, "aborted")
    _roll_back(environment, deployment, actor, reason or f"aborted by {actor}", automatic=False)
    return deployment


@transaction.atomic
def environment_unfreeze(*, actor: Any, environment: Environment, reason: str) -> Environment:
    """A person lifts the freeze that automatic rollbacks put on the environment."""
    require(actor, "deploy", environment.registered_model)
    environment = _locked(environment)
    if not environment.frozen:
        raise conflict("not_frozen", f"{environment} is not frozen.")
    before = {"frozen": True, "automatic_rollbacks": environment.automatic_rollbacks}
    environment.frozen = False
    environment.automatic_rollbacks = 0
    environment.save(update_fields=["frozen", "automatic_rollbacks"])
    audit_record(
        actor=actor,
        action="lifecycle.environment.unfrozen",
        obj=environment,
        before=before,
        after={"frozen": False, "reason": reason},
    )
    return environment
