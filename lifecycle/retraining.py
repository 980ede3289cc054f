"""Retraining writes: policies, run requests and triggers, the worker's run, the follow-up.

The computation lives in the Django-free modules (``strategies``, ``training_data``,
``challenger``); this module decides who may do what, when, on which rows, and
records every step.

Flow of a run::

    trigger (schedule | alert signal | new dataset | request)
      -> retraining_run_request / retraining_run_trigger   checks, RetrainingRun queued
      -> retraining_run_execute (worker)                   train, compare, register the candidate
      -> registry validation (worker)                      registry.version.ready | failed
      -> retraining_follow_up (event, or the beat sweep)   review submitted, evidence queued

Guards: at most one active (queued or running) run per model, enforced by a
partial unique index and checked under the model's row lock; a cooldown between
runs that only a person can override (``force``); a debounce for alert
triggers (the alert's condition held in k of the monitor's last n checks); a
daily budget of automatic runs. An automatic trigger that may not run is
recorded as a ``RetrainingSkip`` with its reason, never dropped.

At most one version per run: the worker registers the version, links it to the
run (``version`` is one-to-one, and set only while still empty) and marks the
job finished in one transaction; an attempt that lost its claim (the sweep
requeued it) gets ``JobLost`` from ``job_finish`` and everything rolls back, so
a worker killed anywhere before that commit leaves no version, and the retry
registers the only one.

Lock order: the run row, then the model row (registration), then the review
row (submission), then the audit chain head (``audit_record``, always last).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import logging
import math
import time
from typing import Any

import numpy as np
import pandas as pd
from django.db import IntegrityError, transaction
from django.utils import timezone

from common import metrics as common_metrics
from common.audit import SystemActor, audit_record, snapshot
from common.errors import DomainError, conflict
from common.events import publish_event
from common.jobs import JobLost, job_enqueue, job_finish, job_progress
from common.models import JobStatus
from common.permissions import require, user_can
from common.storage import cached_blob_path
from lifecycle import challenger, strategies, training_data
from lifecycle import transitions as tr
from lifecycle.models import (
    AUTOMATIC_TRIGGERS,
    RetrainingPolicy,
    RetrainingRun,
    RetrainingSkip,
    RetrainingTrigger,
)
from monitoring.models import CheckRun, PredictionBatch, RetrainingSignal
from registry.artifacts import ArtifactRejected, load_estimator
from registry.choices import DatasetRole, VersionStatus
from registry.models import Dataset, ModelVersion, RegisteredModel
from registry.selectors import champion_for, dataset_schema_problems
from registry.tables import read_table

logger = logging.getLogger(__name__)

DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse"}
TRAIN_DATASET_NAME = "retraining-train"
HOLDOUT_DATASET_NAME = "retraining-holdout"
MAX_WINDOW_HOURS = 24 * 366
MAX_DEBOUNCE = 20
MAX_SEED = 2**31 - 1
RUN_INPUT_ERRORS: tuple[type[Exception], ...] = (
    DomainError,  # a service refused what the run asked (a dataset, a registration)
    training_data.TrainingDataError,
    strategies.StrategyError,
    challenger.ChallengerError,
    ArtifactRejected,
)
"""Errors that no retry can fix: the run fails at once with the reason."""

POLICY_FIELDS = (
    "enabled",
    "strategy",
    "params",
    "schedule",
    "on_alert",
    "on_new_dataset",
    "training_dataset",
    "evaluation_dataset",
    "target_column",
    "production_window_hours",
    "max_rows",
    "holdout_fraction",
    "seed",
    "cooldown_minutes",
    "debounce_checks",
    "debounce_window",
    "daily_budget",
    "auto_submit",
    "primary_metric",
    "tolerance",
    "sensitive_columns",
)
RUN_AUDIT_FIELDS = (
    "trigger",
    "reason",
    "forced",
    "strategy",
    "params",
    "seed",
    "parent",
    "training_dataset",
    "evaluation_dataset",
    "production_window_hours",
    "primary_metric",
    "tolerance",
    "auto_submit",
)


def run_actor(run: RetrainingRun) -> SystemActor:
    """Who acts for a run once it is queued: the run itself, never its requester.

    The candidate is registered by this system actor, so the person who asked for
    the run (``requested_by``) may still sign the candidate off.
    """
    return SystemActor(f"lifecycle.retraining_run#{run.pk}")


def trigger_actor(trigger: str) -> SystemActor:
    return SystemActor(f"lifecycle.retraining.{trigger}")


def _invalid(field: str, message: str, code: str = "invalid") -> DomainError:
    return DomainError(code, message, details={field: message})


# --------------------------------------------------------------------------- schedules

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def parse_cron(expression: str) -> dict[str, str]:
    """A five-field cron expression as django-celery-beat's CrontabSchedule fields.

    Celery's own parser judges each field (what beat will run is what was accepted).
    """
    from celery.schedules import crontab

    parts = expression.split() if isinstance(expression, str) else []
    if len(parts) != 5:
        raise _invalid(
            "schedule",
            f"{expression!r} is not a cron expression: give five fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * 1'.",
            "invalid_schedule",
        )
    fields = dict(zip(CRON_FIELDS, parts, strict=True))
    try:
        crontab(**fields)
    except Exception as exc:  # celery raises ValueError (and parser errors) per field
        raise _invalid(
            "schedule",
            f"The cron expression {expression!r} does not parse: {exc}",
            "invalid_schedule",
        ) from None
    return fields


def next_cron_time(expression: str, after: dt.datetime) -> dt.datetime | None:
    """The first minute strictly after ``after`` (UTC) that the cron expression names.

    Celery's semantics: the day must match both day-of-month and day-of-week.
    """
    from celery.schedules import crontab

    try:
        spec = crontab(**parse_cron(expression))
    except DomainError:
        return None
    start = after.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    day = start.date()
    for _ in range(366 * 5):
        if (
            day.month in spec.month_of_year
            and day.day in spec.day_of_month
            and (day.isoweekday() % 7) in spec.day_of_week
        ):
            for hour in sorted(spec.hour):
                for minute in sorted(spec.minute):
                    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
                    if moment >= start:
                        return moment
        day += dt.timedelta(days=1)
    return None


def _sync_schedule(policy: RetrainingPolicy) -> None:
    """Create, update or disable the policy's django-celery-beat PeriodicTask.

    The project's static schedules are declared in ``config/celery.py``; a policy's
    schedule is a per-model row that beat's DatabaseScheduler reads (and the admin
    shows and edits). ``save()`` (not ``update()``) so that beat notices the change.
    """
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    active = bool(policy.enabled and policy.schedule)
    task = policy.periodic_task
    if not active:
        if task is not None and task.enabled:
            task.enabled = False
            task.save()
        return
    fields = parse_cron(policy.schedule)
    crontab, _ = CrontabSchedule.objects.get_or_create(**fields, timezone="UTC")
    if task is None:
        task = PeriodicTask(name=f"retrain {policy.registered_model.name}")
    task.task = "lifecycle.tasks.retrain_on_schedule"
    task.crontab = crontab
    task.interval = None
    task.args = json.dumps([policy.registered_model_id])
    task.enabled = True
    task.description = (
        f"Retraining of {policy.registered_model.name} (its retraining policy; edit the "
        "policy on the model page rather than here)."
    )
    task.save()
    if policy.periodic_task_id != task.pk:
        policy.periodic_task = task
        RetrainingPolicy.objects.filter(pk=policy.pk).update(periodic_task=task)


# --------------------------------------------------------------------------- policies


def _check_number(
    field: str, value: Any, *, low: float, high: float, integer: bool = True, none: bool = False
) -> Any:
    if value is None and none:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not math.isfinite(float(value)) or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise _invalid(field, f"{field} must be {kind} from {low:g} to {high:g}, not {value!r}.")
    return int(value) if integer else float(value)


def _check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid(field, f"{field} must be true or false, not {value!r}.")
    return value


def _check_dataset(model: RegisteredModel, field: str, dataset: Any) -> Dataset | None:
    if dataset is None:
        return None
    if not isinstance(dataset, Dataset):
        raise _invalid(field, f"{field} must be a dataset.")
    if dataset.registered_model_id != model.pk:
        raise _invalid(field, f"The dataset {dataset} belongs to another model.")
    return dataset


def _check_columns(field: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise _invalid(field, f"{field} must be a list of column names.")
    if len(value) > strategies.MAX_SENSITIVE_COLUMNS or len(set(value)) != len(value):
        raise _invalid(
            field, f"Give at most {strategies.MAX_SENSITIVE_COLUMNS} distinct column names."
        )
    return list(value)


def _clean_policy(model: RegisteredModel, values: dict[str, Any]) -> dict[str, Any]:
    """Every rule a policy obeys by itself (the parent's abilities are checked after)."""
    task = model.task
    v = dict(values)
    v["enabled"] = _check_bool("enabled", v["enabled"])
    v["on_alert"] = _check_bool("on_alert", v["on_alert"])
    v["on_new_dataset"] = _check_bool("on_new_dataset", v["on_new_dataset"])
    v["auto_submit"] = _check_bool("auto_submit", v["auto_submit"])
    v["schedule"] = (v["schedule"] or "").strip()
    if v["schedule"]:
        parse_cron(v["schedule"])
        v["schedule"] = " ".join(v["schedule"].split())
    try:
        # Stored as the owner gave them; each run records them resolved (defaults filled).
        strategies.validate_params(v["strategy"], v["params"])
        v["params"] = dict(v["params"] or {})
    except strategies.StrategyError as exc:
        raise DomainError(
            "invalid_strategy", exc.reason, details={exc.field or "strategy": exc.reason}
        ) from None
    v["training_dataset"] = _check_dataset(model, "training_dataset", v["training_dataset"])
    v["evaluation_dataset"] = _check_dataset(model, "evaluation_dataset", v["evaluation_dataset"])
    if v["evaluation_dataset"] is not None and v["evaluation_dataset"] == v["training_dataset"]:
        raise _invalid(
            "evaluation_dataset", "The evaluation dataset cannot be the training dataset."
        )
    if not isinstance(v["target_column"], str) or len(v["target_column"]) > 200:
        raise _invalid("target_column", "target_column must be a column name.")
    v["production_window_hours"] = _check_number(
        "production_window_hours", v["production_window_hours"], low=0, high=MAX_WINDOW_HOURS
    )
    v["max_rows"] = _check_number("max_rows", v["max_rows"], low=10, high=10**8, none=True)
    v["holdout_fraction"] = _check_number(
        "holdout_fraction", v["holdout_fraction"], low=0.05, high=0.5, integer=False
    )
    v["seed"] = _check_number("seed", v["seed"], low=0, high=MAX_SEED)
    v["cooldown_minutes"] = _check_number(
        "cooldown_minutes", v["cooldown_minutes"], low=0, high=60 * 24 * 30
    )
    v["debounce_window"] = _check_number(
        "debounce_window", v["debounce_window"], low=1, high=MAX_DEBOUNCE
    )
    v["debounce_checks"] = _check_number(
        "debounce_checks", v["debounce_checks"], low=1, high=v["debounce_window"]
    )
    v["daily_budget"] = _check_number("daily_budget", v["daily_budget"], low=0, high=100)
    if v["primary_metric"] not in common_metrics.names(task):
        raise _invalid(
            "primary_metric",
            f"{v['primary_metric']!r} is not a {task} metric; the metrics are "
            f"{', '.join(common_metrics.names(task))}.",
        )
    v["tolerance"] = _check_number("tolerance", v["tolerance"], low=0, high=1e9, integer=False)
    v["sensitive_columns"] = _check_columns("sensitive_columns", v["sensitive_columns"])
    _check_strategy_data(v["strategy"], v["production_window_hours"])
    return v


def _check_strategy_data(strategy: str, window_hours: int) -> None:
    if strategy == strategies.ONLINE and not window_hours:
        raise _invalid(
            "production_window_hours",
            "online learns from labelled production rows: set production_window_hours.",
        )
    if strategy == strategies.FAIRNESS_MITIGATION and window_hours:
        raise _invalid(
            "production_window_hours",
            "fairness_mitigation trains on a dataset holding the sensitive columns; "
            "production rows do not carry them, so production_window_hours must be 0.",
        )


def policy_defaults(model: RegisteredModel) -> dict[str, Any]:
    """What a new policy holds before its owner changes anything."""
    return {
        "enabled": True,
        "strategy": strategies.REFIT,
        "params": {},
        "schedule": "",
        "on_alert": False,
        "on_new_dataset": False,
        "training_dataset": None,
        "evaluation_dataset": None,
        "target_column": "",
        "production_window_hours": 0,
        "max_rows": None,
        "holdout_fraction": training_data.DEFAULT_HOLDOUT_FRACTION,
        "seed": 0,
        "cooldown_minutes": 60,
        "debounce_checks": 1,
        "debounce_window": 1,
        "daily_budget": 3,
        "auto_submit": True,
        "primary_metric": DEFAULT_METRIC[model.task],
        "tolerance": 0.01,
        "sensitive_columns": [],
    }


def retraining_policy_set(
    *, actor: Any, model: RegisteredModel, **changes: Any
) -> RetrainingPolicy:
    """Create or change the model's retraining policy (its owner: the manage right).

    Fields not given keep their value (or the default, for a new policy). The
    strategy is checked against the parent a run would start from today (the
    champion, else the newest ready version), so "this estimator cannot warm
    start" is said now. The schedule becomes a django-celery-beat PeriodicTask.
    """
    require(actor, "manage", model)
    unknown = sorted(set(changes) - set(POLICY_FIELDS))
    if unknown:
        raise _invalid(unknown[0], f"Unknown policy field {unknown[0]!r}.")
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        policy = (
            RetrainingPolicy.objects.select_for_update(of=("self",))
            .filter(registered_model=model)
            .select_related("periodic_task")
            .first()
        )
        current = (
            {name: getattr(policy, name) for name in POLICY_FIELDS}
            if policy
            else policy_defaults(model)
        )
        values = _clean_policy(model, {**current, **changes})
        parent = _default_parent(model)
        if parent is not None:
            _check_parent(parent, values["strategy"], values["params"])
        before = snapshot(policy, POLICY_FIELDS) if policy else None
        if policy is None:
            policy = RetrainingPolicy(registered_model=model)
        for name, value in values.items():
            setattr(policy, name, value)
        policy.updated_by = None if isinstance(actor, SystemActor) else actor
        policy.save()
        _sync_schedule(policy)
        audit_record(
            actor=actor,
            action=f"lifecycle.retraining_policy.{'updated' if before else 'created'}",
            obj=policy,
            before=before,
            after={
                **snapshot(policy, POLICY_FIELDS),
                "periodic_task": policy.periodic_task_id,
            },
        )
    return policy


# --------------------------------------------------------------------------- planning a run


def _default_parent(model: RegisteredModel) -> ModelVersion | None:
    """The champion (``production``, else ``champion``), else the newest ready version."""
    champion = champion_for(model=model)
    if champion is not None and champion.status == VersionStatus.READY:
        return champion
    return (
        ModelVersion.objects.filter(registered_model=model, status=VersionStatus.READY)
        .order_by("-number")
        .first()
    )


@functools.lru_cache(maxsize=256)
def _capability(artifact_key: str, sha256: str, strategy: str, params_json: str) -> Any:
    """``strategies.check`` on the stored artifact: cleaned params, or the refusal.

    Cached per process by the artifact's digest (immutable), the strategy and its
    parameters: a request pays for loading the parent at most once.
    """
    with cached_blob_path(artifact_key) as path:
        estimator, _types = load_estimator(path)
    try:
        return strategies.check(strategy, estimator, json.loads(params_json))
    except strategies.StrategyError as exc:
        return exc


def _check_parent(parent: ModelVersion, strategy: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the run will use them, or 400 saying why the parent cannot."""
    try:
        answer = _capability(
            parent.artifact_key,
            parent.artifact_sha256,
            strategy,
            json.dumps(params, sort_keys=True),
        )
    except ArtifactRejected as exc:
        raise conflict("parent_unloadable", f"{parent} cannot be loaded: {exc.reason}") from None
    if isinstance(answer, strategies.StrategyError):
        raise DomainError(
            "unsupported_strategy",
            f"{parent} cannot be retrained with {strategy}: {answer.reason}",
            details={answer.field or "strategy": answer.reason, "parent": parent.number},
        )
    return dict(answer)


def _newest_training_dataset(model: RegisteredModel) -> Dataset | None:
    """The model's newest training dataset uploaded by a person or a pipeline.

    Datasets that retraining runs stored themselves (no ``created_by``) are not
    candidates: a run never trains on another run's leftovers by default.
    """
    return (
        Dataset.objects.filter(
            registered_model=model, role=DatasetRole.TRAINING, created_by__isnull=False
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def _schema_check(parent: ModelVersion, dataset: Dataset, field: str, extra: list[str]) -> None:
    problems = dataset_schema_problems(parent, dataset, extra=extra)
    if problems:
        raise DomainError(
            "invalid_dataset",
            f"The dataset {dataset} cannot be used: {problems[0]['message']}.",
            details={
                field: problems[0]["message"],
                "missing_columns": [p["column"] for p in problems if "missing" in p["message"]],
                "problems": problems,
            },
        )


def _check_audit_failed(audit: Any) -> None:
    if audit.status != JobStatus.SUCCEEDED or audit.passed is not False:
        raise conflict(
            "audit_not_failed",
            "Only a completed audit that failed is mitigated "
            f"(this one is {audit.status}, passed={audit.passed}).",
        )


def _mitigation_datasets(
    audit: Any, parent: ModelVersion, columns: list[str], *, named: Dataset | None
) -> tuple[Dataset | None, Dataset | None]:
    """(training, evaluation) datasets of a run that mitigates ``audit``.

    As governance's mitigation always did: fitted on the parent's own training data
    and judged on the audited rows, which it was not fitted on. When the parent records
    no training data apart from the audited rows (or none holding the sensitive
    columns), the audited rows themselves, with the run's seeded hold-out. A named
    training dataset wins; the audited rows then judge it unless they are the same.
    """
    if named is not None:
        return named, (audit.dataset if named.pk != audit.dataset_id else None)
    training = parent.training_dataset
    if (
        training is not None
        and training.registered_model_id == parent.registered_model_id
        and training.sha256 != audit.dataset_sha256
        and set(columns) <= set(training.column_names)
    ):
        return training, audit.dataset
    return audit.dataset, None


def _plan(
    *,
    model: RegisteredModel,
    policy: RetrainingPolicy | None,
    given: dict[str, Any],
    parent_hint: ModelVersion | None = None,
    dataset_hint: Dataset | None = None,
) -> dict[str, Any]:
    """Every field of a new run, decided and checked now (raises the 4xx that says why).

    Precedence, highest first: what the request names, what the trigger brings
    (the alert's monitored version, the new dataset), the policy, the defaults.
    """
    defaults = policy_defaults(model)
    base = {name: getattr(policy, name) for name in POLICY_FIELDS} if policy else defaults
    audit = given.get("fairness_audit")
    strategy = given.get("strategy") or (
        strategies.FAIRNESS_MITIGATION if audit is not None else base["strategy"]
    )
    if "strategy" in given or audit is not None:
        params = given.get("params") or {}
    else:
        params = base["params"]
    if audit is not None:
        if strategy != strategies.FAIRNESS_MITIGATION:
            raise _invalid(
                "fairness_audit", "A fairness audit is mitigated by fairness_mitigation."
            )
        if audit.version.registered_model_id != model.pk:
            raise _invalid("fairness_audit", "The fairness audit belongs to another model.")
        _check_audit_failed(audit)
        params = {"sensitive_columns": audit.sensitive_columns, **params}
    try:
        strategies.validate_params(strategy, params)
    except strategies.StrategyError as exc:
        raise DomainError(
            "invalid_strategy", exc.reason, details={exc.field or "strategy": exc.reason}
        ) from None
    params = dict(params or {})

    parent = given.get("parent") or (audit.version if audit else None) or parent_hint
    parent = parent or _default_parent(model)
    if parent is None:
        raise conflict("no_parent", f"{model.name} has no ready version to retrain.")
    if parent.registered_model_id != model.pk:
        raise _invalid("parent", "The parent version belongs to another model.")
    if parent.status != VersionStatus.READY:
        raise conflict(
            "version_not_ready", f"{parent} is {parent.status}; only a ready version is retrained."
        )

    window = given.get("production_window_hours")
    window = base["production_window_hours"] if window is None else window
    window = _check_number("production_window_hours", window, low=0, high=MAX_WINDOW_HOURS)
    if strategy == strategies.FAIRNESS_MITIGATION and "production_window_hours" not in given:
        window = 0
    _check_strategy_data(strategy, window)

    target = (audit.target_column if audit else "") or base["target_column"]
    target = target or parent.target_column
    if not target:
        raise _invalid(
            "target_column",
            f"{parent} records no target column; name one in the policy (target_column).",
        )
    sensitive = list(params.get("sensitive_columns") or [])
    features = list(dict.fromkeys([*parent.feature_names, *sensitive]))

    dataset = _check_dataset(model, "training_dataset", given.get("training_dataset"))
    audit_evaluation = None
    if audit is not None:
        dataset, audit_evaluation = _mitigation_datasets(
            audit, parent, [target, *sensitive], named=dataset
        )
    dataset = dataset or dataset_hint
    dataset = dataset or base["training_dataset"] or _newest_training_dataset(model)
    if dataset is not None:
        dataset = _check_dataset(model, "training_dataset", dataset)
        _schema_check(parent, dataset, "training_dataset", [target, *sensitive])
    elif not window:
        raise _invalid(
            "training_dataset",
            f"{model.name} has no training dataset and the run reads no production rows: "
            "upload a training dataset or set production_window_hours.",
        )
    if strategy == strategies.FAIRNESS_MITIGATION and dataset is None:
        raise _invalid("training_dataset", "fairness_mitigation needs a training dataset.")

    evaluation = _check_dataset(model, "evaluation_dataset", given.get("evaluation_dataset"))
    evaluation = evaluation or audit_evaluation or base["evaluation_dataset"]
    if evaluation is not None:
        if dataset is not None and evaluation.pk == dataset.pk:
            raise _invalid(
                "evaluation_dataset", "The evaluation dataset cannot be the training dataset."
            )
        _schema_check(parent, evaluation, "evaluation_dataset", [target, *sensitive])

    seed = given.get("seed")
    seed = _check_number("seed", base["seed"] if seed is None else seed, low=0, high=MAX_SEED)
    cleaned = _check_parent(parent, strategy, params)
    policy_sensitive = list(base["sensitive_columns"] or [])
    return {
        "strategy": strategy,
        "params": cleaned,
        "seed": seed,
        "parent": parent,
        "training_dataset": dataset,
        "evaluation_dataset": evaluation,
        "target_column": target,
        "features": features,
        "production_window_hours": window,
        "max_rows": base["max_rows"],
        "holdout_fraction": 0.0 if evaluation is not None else base["holdout_fraction"],
        "primary_metric": base["primary_metric"],
        "tolerance": base["tolerance"],
        "auto_submit": base["auto_submit"],
        "sensitive_columns": sensitive or policy_sensitive,
        "fairness_audit": audit,
    }


# --------------------------------------------------------------------------- guards


def _active_run(model: RegisteredModel) -> RetrainingRun | None:
    return (
        RetrainingRun.objects.filter(
            registered_model=model, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
        )
        .order_by("-queued_at")
        .first()
    )


def _cooldown_left(model: RegisteredModel, minutes: int, now: dt.datetime) -> dt.timedelta | None:
    if not minutes:
        return None
    last = (
        RetrainingRun.objects.filter(registered_model=model)
        .order_by("-queued_at")
        .values_list("queued_at", flat=True)
        .first()
    )
    if last is None:
        return None
    left = last + dt.timedelta(minutes=minutes) - now
    return left if left > dt.timedelta(0) else None


def _automatic_runs_today(model: RegisteredModel, now: dt.datetime) -> int:
    """Automatic runs in the last 24 hours (a rolling day)."""
    return RetrainingRun.objects.filter(
        registered_model=model,
        trigger__in=AUTOMATIC_TRIGGERS,
        queued_at__gte=now - dt.timedelta(days=1),
    ).count()


def _minutes(delta: dt.timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds() / 60))


# --------------------------------------------------------------------------- creating runs


def _create_run(
    *,
    actor: Any,
    model: RegisteredModel,
    policy: RetrainingPolicy | None,
    plan: dict[str, Any],
    trigger: str,
    reason: str,
    forced: bool = False,
    requested_by: Any = None,
    signal: RetrainingSignal | None = None,
    trigger_dataset: Dataset | None = None,
    now: dt.datetime,
) -> RetrainingRun:
    """Insert the run and queue it, inside the caller's transaction (model row locked)."""
    try:
        with transaction.atomic():
            run = RetrainingRun.objects.create(
                registered_model=model,
                policy=policy,
                trigger=trigger,
                reason=reason[:2000],
                forced=forced,
                requested_by=requested_by,
                signal=signal,
                alert=signal.alert if signal else None,
                trigger_dataset=trigger_dataset,
                window_end=now,
                **plan,
            )
    except IntegrityError:  # the partial unique index: another run became active
        raise conflict(
            "run_active", f"A retraining run of {model.name} is already queued or running."
        ) from None
    audit_record(
        actor=actor,
        action="lifecycle.retraining_run.requested",
        obj=run,
        after={
            **snapshot(run, RUN_AUDIT_FIELDS),
            "signal": run.signal_id,
            "alert": run.alert_id,
            "trigger_dataset": run.trigger_dataset_id,
            "fairness_audit": run.fairness_audit_id,
        },
    )
    job_enqueue(run)
    return run


def retraining_run_request(
    *,
    actor: Any,
    model: RegisteredModel,
    reason: str = "",
    force: bool = False,
    **given: Any,
) -> RetrainingRun:
    """A person (UI) or a pipeline (API) asks for a run now: 202, or a 4xx and nothing.

    ``given`` may name ``strategy``, ``params``, ``parent`` (a version),
    ``training_dataset``, ``evaluation_dataset``, ``production_window_hours``,
    ``seed``, ``fairness_audit``; the rest comes from the policy. ``force``
    overrides the cooldown (people only: automatic triggers never can).
    """
    require(actor, "register", model)
    allowed = {
        "strategy",
        "params",
        "parent",
        "training_dataset",
        "evaluation_dataset",
        "production_window_hours",
        "seed",
        "fairness_audit",
    }
    given = {k: v for k, v in given.items() if v is not None}
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise _invalid(unknown[0], f"Unknown field {unknown[0]!r}.")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise _invalid("reason", "The reason is text of at most 2000 characters.")
    policy = RetrainingPolicy.objects.filter(registered_model=model).first()
    plan = _plan(model=model, policy=policy, given=given)
    if plan["strategy"] == strategies.FAIRNESS_MITIGATION:
        require(actor, "manage", model)  # as for governance's mitigation: the owner only
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        now = timezone.now()
        active = _active_run(model)
        if active is not None:
            raise conflict(
                "run_active",
                f"Retraining run #{active.pk} of {model.name} is {active.status}; "
                "wait for it to finish.",
                run=active.pk,
            )
        left = _cooldown_left(model, policy.cooldown_minutes if policy else 0, now)
        if left is not None and not force:
            raise conflict(
                "cooldown",
                f"{model.name} was retrained less than {policy.cooldown_minutes} minutes ago "
                f"(cooldown: {_minutes(left)} more minutes); force the run to override it.",
                minutes_left=_minutes(left),
            )
        return _create_run(
            actor=actor,
            model=model,
            policy=policy,
            plan=plan,
            trigger=RetrainingTrigger.REQUEST,
            reason=reason,
            forced=bool(force and left is not None),
            requested_by=None if isinstance(actor, SystemActor) else actor,
            now=now,
        )


def fairness_mitigation_request(
    *,
    actor: Any,
    audit: Any,
    method: str = strategies.MITIGATION_METHODS[0],
    constraint: str = strategies.MITIGATION_CONSTRAINTS[0],
    random_state: int = 0,
    force: bool = False,
    reason: str = "",
) -> RetrainingRun:
    """The mitigation door on a failed audit (``.../fairness-audits/{id}/mitigations/``
    and the version page's "Start mitigation"): a run with the ``fairness_mitigation``
    strategy, like ``POST .../retrain/ {"fairness_audit": id}``, but strict about its
    data: fitted on the audited version's recorded training data and judged on the
    audit's rows, so it refuses a version without training data (``no_training_data``)
    and an audit run on the training data itself (``audit_on_training_data``).

    The model's owner only (manage and register rights). Everything else (cooldown,
    one active run, the parent's ability, the columns) is ``retraining_run_request``'s.
    """
    version = audit.version
    model = version.registered_model
    if not user_can(actor, "manage", model) or not user_can(actor, "register", model):
        raise DomainError(
            "permission_denied",
            "Only the model's owner (manage and register rights) starts a mitigation.",
            status=403,
        )
    _check_audit_failed(audit)
    training = version.training_dataset
    if training is None:
        raise conflict(
            "no_training_data",
            f"{version} records no training dataset: a mitigation is fitted on the "
            "training data, never on the rows that audit it.",
        )
    if training.sha256 == audit.dataset_sha256:
        raise conflict(
            "audit_on_training_data",
            f"Fairness audit #{audit.pk} ran on the training data of {version}. Audit it on "
            "held-out data first: the candidate is fitted on the training rows and judged "
            "on rows it has not seen.",
            dataset=audit.dataset_id,
        )
    return retraining_run_request(
        actor=actor,
        model=model,
        reason=reason or f"Mitigate fairness audit #{audit.pk} of v{version.number}.",
        force=force,
        fairness_audit=audit,
        parent=version,
        params={"method": method, "constraint": constraint},
        seed=random_state,
        training_dataset=training,
        evaluation_dataset=audit.dataset,
    )


def _skip(
    *,
    model: RegisteredModel,
    trigger: str,
    code: str,
    reason: str,
    signal: RetrainingSignal | None = None,
    dataset: Dataset | None = None,
) -> RetrainingSkip:
    skip = RetrainingSkip.objects.create(
        registered_model=model,
        trigger=trigger,
        code=code,
        reason=reason,
        signal=signal,
        alert=signal.alert if signal else None,
        dataset=dataset,
    )
    audit_record(
        actor=trigger_actor(trigger),
        action="lifecycle.retraining_run.skipped",
        obj=skip,
        after={
            "trigger": trigger,
            "code": code,
            "reason": reason,
            "signal": skip.signal_id,
            "alert": skip.alert_id,
            "dataset": skip.dataset_id,
        },
    )
    return skip


def _trigger_is_on(policy: RetrainingPolicy | None, trigger: str) -> str | None:
    """Why the policy does not let ``trigger`` start runs, or None."""
    if policy is None:
        return "The model has no retraining policy."
    if not policy.enabled:
        return "The retraining policy is disabled."
    switch = {
        RetrainingTrigger.ALERT: policy.on_alert,
        RetrainingTrigger.NEW_DATASET: policy.on_new_dataset,
        RetrainingTrigger.SCHEDULE: bool(policy.schedule),
    }[trigger]
    if not switch:
        label = RetrainingTrigger(trigger).label.lower()
        return f"The retraining policy does not retrain on a {label}."
    return None


def retraining_run_trigger(
    *,
    model: RegisteredModel,
    trigger: str,
    signal: RetrainingSignal | None = None,
    dataset: Dataset | None = None,
    reason: str = "",
) -> RetrainingRun | RetrainingSkip:
    """An automatic trigger: a run, or a recorded skip with the reason (never a silent drop).

    Runs inside the caller's transaction when there is one (signal consumption
    marks the signal consumed in the same transaction).
    """
    assert trigger in AUTOMATIC_TRIGGERS
    actor = trigger_actor(trigger)
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        policy = RetrainingPolicy.objects.filter(registered_model=model).first()
        now = timezone.now()

        def skip(code: str, why: str) -> RetrainingSkip:
            return _skip(
                model=model, trigger=trigger, code=code, reason=why, signal=signal, dataset=dataset
            )

        off = _trigger_is_on(policy, trigger)
        if off:
            return skip("trigger_off", off)
        assert policy is not None
        active = _active_run(model)
        if active is not None:
            return skip("run_active", f"Retraining run #{active.pk} was still {active.status}.")
        left = _cooldown_left(model, policy.cooldown_minutes, now)
        if left is not None:
            return skip(
                "cooldown",
                f"In the cooldown of {policy.cooldown_minutes} minutes after the last run "
                f"({_minutes(left)} minutes left).",
            )
        spent = _automatic_runs_today(model, now)
        if spent >= policy.daily_budget:
            return skip(
                "budget",
                f"The daily budget of {policy.daily_budget} automatic runs is spent "
                f"({spent} in the last 24 hours).",
            )
        try:
            plan = _plan(
                model=model,
                policy=policy,
                given={},
                parent_hint=signal.version if signal else None,
                dataset_hint=dataset,
            )
        except DomainError as exc:
            return skip(exc.code, exc.message)
        try:
            return _create_run(
                actor=actor,
                model=model,
                policy=policy,
                plan=plan,
                trigger=trigger,
                reason=reason,
                signal=signal,
                trigger_dataset=dataset,
                now=now,
            )
        except DomainError as exc:  # another run became active (the unique index)
            return skip(exc.code, exc.message)


# --------------------------------------------------------------------------- triggers


def _debounce(signal: RetrainingSignal, policy: RetrainingPolicy | None) -> tuple[str, str]:
    """("go" | "wait" | "skip", why) for an alert signal, from the monitor's recent checks."""
    k = policy.debounce_checks if policy else 1
    n = policy.debounce_window if policy else 1
    alert = signal.alert
    if alert is None:
        return ("go", "") if k == 1 else ("skip", "The alert behind the signal is gone.")
    checks = list(
        CheckRun.objects.filter(monitor_id=alert.monitor_id, status=JobStatus.SUCCEEDED)
        .order_by("-window_end", "-pk")
        .values_list("breaches", "finished_at")[:n]
    )
    held = [any(b.get("kind") == alert.kind for b in breaches or []) for breaches, _ in checks]
    count = sum(held)
    if tr.debounce_met(held, k=k, n=n):
        return (
            "go",
            f"the {alert.get_kind_display().lower()} held in {count} of the last {n} checks",
        )
    if alert.status == "resolved":
        return "skip", (
            f"The alert was resolved before its condition held in {k} of {n} checks "
            f"(it held in {count})."
        )
    newer = sum(1 for _, finished in checks if finished and finished >= signal.created_at)
    if newer >= n:
        return "skip", f"The condition held in {count} of the last {n} checks; {k} are needed."
    return "wait", f"held in {count} of {n} checks so far; {k} needed"


def retraining_signals_consume(*, signal_ids: list[int] | None = None) -> dict[str, int]:
    """Turn unconsumed retraining signals into runs or recorded skips.

    Each signal is claimed with a conditional UPDATE (``consumed_at`` still empty)
    in the transaction that creates its run or skip, so two consumers never act
    twice on one signal and a rolled-back run leaves the signal to the next sweep.
    A signal whose debounce is not met yet stays unconsumed and is looked at again.
    """
    counts = {"runs": 0, "skipped": 0, "waiting": 0}
    pending = RetrainingSignal.objects.filter(consumed_at__isnull=True)
    if signal_ids is not None:
        pending = pending.filter(pk__in=signal_ids)
    for signal in pending.select_related("alert", "version", "registered_model").order_by(
        "created_at", "pk"
    )[:100]:
        policy = RetrainingPolicy.objects.filter(registered_model=signal.registered_model).first()
        verdict, why = _debounce(signal, policy)
        if verdict == "wait" and _trigger_is_on(policy, RetrainingTrigger.ALERT) is None:
            counts["waiting"] += 1
            continue
        with transaction.atomic():
            if not RetrainingSignal.objects.filter(pk=signal.pk, consumed_at__isnull=True).update(
                consumed_at=timezone.now()
            ):
                continue  # another consumer took it
            if verdict == "skip":
                _skip(
                    model=signal.registered_model,
                    trigger=RetrainingTrigger.ALERT,
                    code="debounce",
                    reason=why,
                    signal=signal,
                )
                counts["skipped"] += 1
                continue
            reason = f"Alert: {signal.reason}" + (f" ({why})" if why else "")
            result = retraining_run_trigger(
                model=signal.registered_model,
                trigger=RetrainingTrigger.ALERT,
                signal=signal,
                reason=reason,
            )
            counts["runs" if isinstance(result, RetrainingRun) else "skipped"] += 1
    return counts


def retraining_on_new_dataset(*, dataset_id: int) -> RetrainingRun | RetrainingSkip | None:
    """A training dataset was uploaded for the model: retrain on it if the policy says so."""
    dataset = Dataset.objects.select_related("registered_model").filter(pk=dataset_id).first()
    if dataset is None or dataset.role != DatasetRole.TRAINING or dataset.created_by_id is None:
        return None  # not training data, or stored by a run itself (never a trigger)
    policy = RetrainingPolicy.objects.filter(registered_model=dataset.registered_model).first()
    if policy is None or not policy.on_new_dataset:
        return None  # nothing asked to react to uploads: not a skipped trigger
    return retraining_run_trigger(
        model=dataset.registered_model,
        trigger=RetrainingTrigger.NEW_DATASET,
        dataset=dataset,
        reason=f"New training dataset {dataset}.",
    )


def retraining_on_schedule(*, model_id: int) -> RetrainingRun | RetrainingSkip | None:
    """The policy's PeriodicTask fired (beat)."""
    model = RegisteredModel.objects.filter(pk=model_id).first()
    if model is None:
        return None
    policy = RetrainingPolicy.objects.filter(registered_model=model).first()
    return retraining_run_trigger(
        model=model,
        trigger=RetrainingTrigger.SCHEDULE,
        reason=f"Scheduled ({policy.schedule})." if policy and policy.schedule else "Scheduled.",
    )


def on_event(name: str, payload: dict[str, Any]) -> None:
    """Event listener (after commit): the fast path of every trigger and follow-up.

    The beat sweeps (``retraining_signals_consume``, ``retraining_follow_up_sweep``)
    catch up on anything whose event was lost with its process.
    """
    if name == "monitoring.retraining.requested":
        retraining_signals_consume(signal_ids=[payload["signal"]])
    elif name == "registry.dataset.uploaded":
        if payload.get("role") == DatasetRole.TRAINING and not payload.get("by_system"):
            retraining_on_new_dataset(dataset_id=payload["dataset_id"])
    elif name in ("registry.version.ready", "registry.version.failed"):
        retraining_follow_up(version_id=payload["version_id"])


# --------------------------------------------------------------------------- the worker's run


class _Columns:
    """A fitted model that picks its own columns out of a wider frame.

    The champion and the challenger may read different columns (a mitigated
    challenger also reads the sensitive ones); both are scored on the same rows.
    Answers are kept per frame: the comparison and the metrics ask for the same
    predictions on the same rows, and they are computed once.
    """

    def __init__(self, estimator: Any, columns: list[str]) -> None:
        self.estimator = estimator
        self.columns = list(columns)
        self._answers: dict[tuple[str, int], Any] = {}
        if getattr(estimator, "classes_", None) is not None:
            self.classes_ = estimator.classes_
        if hasattr(estimator, "predict_proba"):
            self.predict_proba = lambda X: self._ask("predict_proba", X)

    def _ask(self, method: str, X: pd.DataFrame) -> Any:
        key = (method, id(X))
        if key not in self._answers:
            self._answers[key] = getattr(self.estimator, method)(X[self.columns])
        return self._answers[key]

    def predict(self, X: pd.DataFrame) -> Any:
        return self._ask("predict", X)


def _step(job: RetrainingRun, message: str) -> None:
    """One line of the run's log, and a heartbeat; stop if the claim was taken away."""
    stamp = timezone.now().strftime("%H:%M:%S")
    if not job_progress(job, log=f"{stamp} {message}"):
        raise JobLost(f"retraining run {job.pk} attempt {job.attempts} lost its claim")


def _read_dataset(dataset: Dataset) -> pd.DataFrame:
    with cached_blob_path(dataset.storage_key) as path:
        return read_table(path)


def _load(version: ModelVersion) -> Any:
    with cached_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    return estimator


def production_rows(run: RetrainingRun) -> pd.DataFrame | None:
    """The labelled production rows of the run's window, from every version's batches.

    A run learns from what production saw, whichever version predicted it; the
    rows are the features, ``timestamp`` and the joined ``label``.
    """
    from monitoring.windows import labelled_rows

    if not run.production_window_hours:
        return None
    end = run.window_end or run.queued_at
    start = end - dt.timedelta(hours=run.production_window_hours)
    batches = list(
        PredictionBatch.objects.filter(
            version__registered_model_id=run.registered_model_id,
            last_at__gte=start,
            first_at__lt=end,
        ).order_by("first_at", "pk")
    )
    rows = labelled_rows(
        run.registered_model, run.parent, batches, columns=(*run.features, "timestamp")
    )
    if "timestamp" in rows.columns and len(rows):
        stamps = pd.to_datetime(rows["timestamp"], utc=True)
        rows = rows[(stamps >= start) & (stamps < end)]
    if not len(rows):
        return None
    keep = [c for c in (*run.features, training_data.PRODUCTION_LABEL, "timestamp") if c in rows]
    return rows[keep].reset_index(drop=True)


def _scores(estimator: Any, X: pd.DataFrame, task: str) -> Any:
    if task == "classification" and hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return None


def _metrics(estimator: Any, X: pd.DataFrame, y: Any, task: str, classes: Any) -> dict[str, Any]:
    values = common_metrics.compute_all(
        task,
        np.asarray(y),
        estimator.predict(X),
        classes=classes,
        scores=_scores(estimator, X, task),
    )
    return {name: value for name, value in values.items() if value is not None}


def _parquet(frame: pd.DataFrame) -> io.BytesIO:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    buffer.seek(0)
    return buffer


def retraining_run_execute(*, job: RetrainingRun) -> RetrainingRun:
    """The worker's half: assemble the rows, train, compare, register the one candidate.

    Nothing is written before the final transaction except log lines (with the
    heartbeat). That transaction stores the run's training rows and hold-out as
    datasets, registers the version through the registry's service (validated by
    the registry's own job), links it to the run only while the run has none,
    sets the outcome and finishes the job: all or nothing.
    """
    from registry import services as registry_services

    run = job
    if run.version_id is not None:  # an earlier attempt committed: nothing left to do
        with transaction.atomic():
            job_finish(job, log="candidate already registered")
        return run
    started = time.perf_counter()
    timings: dict[str, float] = {}
    model = run.registered_model
    parent = run.parent
    task = model.task

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 4)
        return now

    _step(job, f"attempt {job.attempts}: {run.strategy} of v{parent.number} ({run.trigger})")
    mark = time.perf_counter()
    parent_estimator = _load(parent)
    dataset = _read_dataset(run.training_dataset) if run.training_dataset_id else None
    production = production_rows(run)
    evaluation = _read_dataset(run.evaluation_dataset) if run.evaluation_dataset_id else None
    mark = lap("load", mark)
    _step(
        job,
        f"loaded: dataset {run.training_dataset or '-'} "
        f"({0 if dataset is None else len(dataset)} rows), "
        f"{0 if production is None else len(production)} labelled production rows "
        f"of the last {run.production_window_hours} h",
    )
    if dataset is None and production is None:
        raise training_data.TrainingDataError(
            "There is nothing to train on: no training dataset and no labelled production "
            f"rows in the {run.production_window_hours} hours before "
            f"{run.window_end:%Y-%m-%d %H:%M}."
        )
    if evaluation is not None:
        training_data.check_columns(
            evaluation, features=run.features, target=run.target_column, source="evaluation dataset"
        )
    data = training_data.assemble(
        features=run.features,
        target=run.target_column,
        task=task,
        seed=run.seed,
        dataset=dataset,
        production=production,
        max_rows=run.max_rows,
        holdout_fraction=0.0 if evaluation is not None else run.holdout_fraction,
        classes=parent.classes,
        # The policy's sensitive columns ride along (never trained on), so the
        # stored hold-out can audit the candidate by them.
        carry=run.sensitive_columns or [],
    )
    mark = lap("assemble", mark)
    rows = data.record["train"]["rows"]
    _step(
        job,
        f"assembled {sum(rows.values())} training rows ({rows['dataset']} dataset, "
        f"{rows['production']} production) and "
        + (
            f"{sum(data.record['holdout']['rows'].values())} hold-out rows"
            if data.holdout is not None
            else f"the evaluation dataset {run.evaluation_dataset}"
        ),
    )
    if run.strategy == strategies.ONLINE:
        learned = data.production_train()
        if not len(learned):
            raise strategies.StrategyError(
                "online learns from production rows; none were labelled in the window."
            )
        X, y = learned[data.features], learned[data.target]
    else:
        X, y = data.X_train, data.y_train
    _step(job, f"fitting: {run.strategy} on {len(y)} rows")
    result = strategies.train(
        run.strategy, parent_estimator, X, y, run.params, seed=run.seed, classes=parent.classes
    )
    mark = lap("train", mark)
    _step(job, f"fitted in {result.record['fit_seconds']:.2f}s")

    if evaluation is not None:
        X_cmp, y_cmp = evaluation[run.features], evaluation[run.target_column]
        compared_on = f"evaluation dataset {run.evaluation_dataset}"
    else:
        assert data.holdout is not None
        X_cmp, y_cmp = data.X_holdout, data.y_holdout
        compared_on = "the run's hold-out"
    champion = champion_for(model=model)
    champion_estimator = None
    if champion is not None:
        champion_estimator = parent_estimator if champion.pk == parent.pk else _load(champion)
    challenger_view = _Columns(result.estimator, run.features)
    parent_view = _Columns(parent_estimator, parent.feature_names)
    champion_view = None
    if champion is not None:
        champion_view = (
            parent_view
            if champion.pk == parent.pk
            else _Columns(champion_estimator, champion.feature_names)
        )
    comparison = challenger.compare(
        challenger=challenger_view,
        champion=champion_view,
        X=X_cmp,
        y=y_cmp,
        metric_name=run.primary_metric,
        tolerance=run.tolerance,
    )
    candidate_metrics = _metrics(challenger_view, X_cmp, y_cmp, task, parent.classes)
    parent_metrics = _metrics(parent_view, X_cmp, y_cmp, task, parent.classes)
    mark = lap("compare", mark)
    _step(job, comparison.reason)

    import skops.io as sio

    artifact = sio.dumps(result.estimator)
    environment = training_data.environment(
        seeds={"run": run.seed, **{k: int(v) for k, v in result.record["seeded_params"].items()}}
    )
    mark = lap("serialize", mark)
    with transaction.atomic():
        # Lock the run first (lock order), and be sure this attempt still owns it.
        locked = RetrainingRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != JobStatus.RUNNING or locked.attempts != job.attempts:
            raise JobLost(f"retraining run {run.pk} attempt {job.attempts} lost its claim")
        actor = run_actor(run)
        train_ds, holdout_ds = _store_datasets(run, data, dataset, actor)
        signature = (
            None
            if run.strategy == strategies.FAIRNESS_MITIGATION
            else (parent.signature.get("inputs") or None)
        )
        version = registry_services.model_version_register(
            actor=actor,
            model=model,
            artifact=io.BytesIO(artifact),
            signature_inputs=signature,
            metrics=candidate_metrics,
            training_dataset=train_ds,
            target_column=run.target_column,
            parent_number=parent.number,
            source_run_id=f"retraining-run-{run.pk}",
            description=(
                f"{strategies.STRATEGIES[run.strategy].name} of v{parent.number} by retraining "
                f"run #{run.pk} ({RetrainingTrigger(run.trigger).label.lower()})."
            ),
            tags=["retrained", run.strategy],
            # Who asked for the run (None for an automatic trigger): requesting a
            # candidate does not make one its author (governance's sign-off rule).
            requested_by=run.requested_by,
        )
        # The one-to-one column is the database's guarantee; the condition makes
        # a second registration for this run fail loudly instead of replacing the first.
        if not RetrainingRun.objects.filter(pk=run.pk, version__isnull=True).update(
            version=version
        ):
            raise JobLost(f"retraining run {run.pk} already has a version")
        timings["register"] = round(time.perf_counter() - mark, 4)
        timings["total"] = round(time.perf_counter() - started, 4)
        timings["fit"] = round(float(result.record["fit_seconds"]), 4)
        timings["overhead"] = round(timings["total"] - timings["fit"], 4)
        comparison_record = {
            **comparison.to_dict(),
            "compared_on": compared_on,
            "champion_version": champion.number if champion else None,
            "candidate_metrics": candidate_metrics,
            "parent_metrics": parent_metrics,
        }
        run.version = version
        run.champion = champion
        run.train_dataset = train_ds
        run.holdout_dataset = holdout_ds
        run.data_record = data.record
        run.training_record = result.record
        run.environment = environment
        run.comparison = comparison_record
        run.timings = timings
        RetrainingRun.objects.filter(pk=run.pk).update(
            champion=champion,
            train_dataset=train_ds,
            holdout_dataset=holdout_ds,
            data_record=data.record,
            training_record=result.record,
            environment=environment,
            comparison=comparison_record,
            timings=timings,
        )
        _outcome(
            run,
            tr.outcome_after_registration(comparison.verdict),
            actor=actor,
            reason=comparison.reason,
        )
        job_finish(
            job,
            log=f"registered v{version.number}; overhead {timings['overhead']:.2f}s beyond the fit",
        )
        audit_record(
            actor=actor,
            action="lifecycle.retraining_run.candidate_registered",
            obj=run,
            after={
                "version": version.number,
                "parent": parent.number,
                "verdict": comparison.verdict,
                "comparison": comparison.reason,
                "train_sha256": data.record["train"]["sha256"],
                "holdout_sha256": data.record["holdout"]["sha256"],
                "inputs": data.record["inputs"],
                "train_dataset": train_ds.pk if train_ds else None,
                "holdout_dataset": holdout_ds.pk if holdout_ds else None,
                "environment": environment,
            },
        )
    return run


def _store_datasets(
    run: RetrainingRun, data: Any, dataset: pd.DataFrame | None, actor: SystemActor
) -> tuple[Dataset | None, Dataset | None]:
    """The run's training rows and hold-out as datasets, so the version's lineage says
    exactly what it was trained on (and the evaluation can score the hold-out).

    When the training rows are exactly the registered dataset's rows (no production
    rows, no cap, no hold-out drawn from it), that dataset is the version's.
    """
    from registry import services as registry_services

    rows = data.record["train"]["rows"]
    exact = (
        dataset is not None
        and rows["production"] == 0
        and rows["dataset"] == len(dataset)
        and run.training_dataset_id is not None
    )
    train_ds = run.training_dataset if exact else None
    if not exact:
        train_ds = registry_services.dataset_upload(
            actor=actor,
            model=run.registered_model,
            name=TRAIN_DATASET_NAME,
            role=DatasetRole.TRAINING,
            upload=_parquet(data.train),
            filename="train.parquet",
            description=(
                f"Training rows of retraining run #{run.pk}: {rows['dataset']} from "
                f"{run.training_dataset or 'no dataset'}, {rows['production']} labelled "
                f"production rows (sha256 {data.record['train']['sha256']})."
            ),
        )
    holdout_ds = None
    if data.holdout is not None:
        held = data.record["holdout"]
        holdout_ds = registry_services.dataset_upload(
            actor=actor,
            model=run.registered_model,
            name=HOLDOUT_DATASET_NAME,
            role=DatasetRole.EVALUATION,
            upload=_parquet(data.holdout),
            filename="holdout.parquet",
            description=(
                f"Hold-out of retraining run #{run.pk} ({held['fraction']:g} of the "
                f"{held['from']} rows, seed {run.seed}; sha256 {held['sha256']})."
            ),
        )
    return train_ds, holdout_ds


def retraining_run_gave_up(*, job: RetrainingRun) -> None:
    """Failure handler (same transaction as the job's final failure): say so in the trail."""
    audit_record(
        actor=run_actor(job),
        action="lifecycle.retraining_run.failed",
        obj=job,
        after={"error": job.error[-1000:], "attempts": job.attempts},
    )
    publish_event(
        "lifecycle.retraining_run.failed",
        {
            "model": job.registered_model.name,
            "run": job.pk,
            "error": job.error[-500:],
        },
    )


# --------------------------------------------------------------------------- outcome


def _outcome(run: RetrainingRun, to: str, *, actor: Any, reason: str = "") -> None:
    """The one writer of ``RetrainingRun.outcome`` (table: ``transitions``)."""
    current = run.outcome
    if to not in tr.RETRAINING_OUTCOME_TRANSITIONS[current]:
        raise conflict(
            "invalid_transition",
            f"A run whose outcome is {current} cannot become {to}.",
            current=current,
            requested=to,
        )
    if not RetrainingRun.objects.filter(pk=run.pk, outcome=current).update(
        outcome=to, outcome_reason=reason[:4000]
    ):
        raise conflict("invalid_transition", f"Run {run.pk} changed under us (was {current}).")
    run.outcome, run.outcome_reason = to, reason
    audit_record(
        actor=actor,
        action=f"lifecycle.retraining_run.{to}",
        obj=run,
        before={"outcome": current},
        after={"outcome": to, "reason": reason, "version": run.version_id},
    )
    publish_event(
        f"lifecycle.retraining_run.{to}",
        {
            "model": run.registered_model.name,
            "run": run.pk,
            "version": run.version.number if run.version_id else None,
            "outcome": to,
            "reason": reason,
        },
    )


# --------------------------------------------------------------------------- follow-up


def _fairness_dataset(run: RetrainingRun, sensitive: list[str]) -> Dataset | None:
    """The first dataset that holds the sensitive columns and the target: the run's
    evaluation dataset, its hold-out, the dataset the parent was last audited on,
    the audit a mitigation started from."""
    from governance.selectors import latest_audit

    parent_audit = latest_audit(version=run.parent)
    for dataset in (
        run.evaluation_dataset,
        run.holdout_dataset,
        parent_audit.dataset if parent_audit else None,
        run.fairness_audit.dataset if run.fairness_audit_id else None,
    ):
        if dataset is not None and set([*sensitive, run.target_column]) <= set(
            dataset.column_names
        ):
            return dataset
    return None


def _sensitive_columns(run: RetrainingRun) -> list[str]:
    """The policy's sensitive columns, else those the parent was last audited by."""
    from governance.selectors import latest_audit

    if run.sensitive_columns:
        return list(run.sensitive_columns)
    parent_audit = latest_audit(version=run.parent)
    return list(parent_audit.sensitive_columns) if parent_audit else []


def _try(run: RetrainingRun, what: str, call: Any) -> tuple[Any, str]:
    """Run one follow-up step in a savepoint; a refusal is recorded, not raised."""
    try:
        with transaction.atomic():
            return call(), ""
    except DomainError as exc:
        logger.info("retraining run %s: %s refused: %s", run.pk, what, exc.message)
        return None, f"{what} refused: {exc.message}"


def retraining_follow_up(*, version_id: int) -> RetrainingRun | None:
    """Once the registry has decided on a run's candidate: review, evidence, outcome.

    Ready: submit it for review under the tier's frozen policy when the run was
    accepted by the champion comparison and its policy auto-submits; queue an
    evaluation (the candidate beside the champion, on the run's evaluation rows)
    and, when the model has sensitive columns, a fairness audit. Failed: the
    outcome says so. Idempotent: the run row is locked and ``followed_up_at``
    set once. Called from the registry's ready/failed events and the beat sweep.
    """
    from governance import fairness_audits, reviews
    from lifecycle import services as evaluations

    with transaction.atomic():
        run = (
            RetrainingRun.objects.select_for_update(of=("self",))
            .select_related("version", "registered_model", "parent")
            .filter(version_id=version_id, followed_up_at__isnull=True)
            .first()
        )
        if run is None or run.version.status == VersionStatus.PENDING:
            return None
        actor = run_actor(run)
        version = run.version
        notes: list[str] = []
        if version.status == VersionStatus.FAILED:
            RetrainingRun.objects.filter(pk=run.pk).update(followed_up_at=timezone.now())
            _outcome(
                run,
                tr.RUN_VERSION_FAILED,
                actor=actor,
                reason=f"The registry refused the candidate: {version.status_reason}",
            )
            return run
        submit = run.outcome == tr.RUN_AWAITING_VALIDATION and run.auto_submit
        submitted = False
        if submit:
            review, note = _try(
                run, "submission", lambda: reviews.review_submit(actor=actor, version=version)
            )
            submitted = review is not None
            notes += [note] if note else []
        evaluation_ds = run.evaluation_dataset or run.holdout_dataset
        evaluation = None
        if evaluation_ds is not None:
            evaluation, note = _try(
                run,
                "evaluation",
                lambda: evaluations.evaluation_start(
                    actor=actor,
                    version=version,
                    dataset=evaluation_ds,
                    target_column=run.target_column,
                ),
            )
            notes += [note] if note else []
        audit = None
        sensitive = _sensitive_columns(run)
        if sensitive and run.registered_model.task == "classification":
            audit_ds = _fairness_dataset(run, sensitive)
            if audit_ds is None:
                notes.append(
                    f"fairness audit not run: no dataset of the run holds {', '.join(sensitive)}"
                )
            else:
                audit, note = _try(
                    run,
                    "fairness audit",
                    lambda: fairness_audits.fairness_audit_start(
                        actor=actor,
                        version=version,
                        dataset=audit_ds,
                        target_column=run.target_column,
                        sensitive_columns=sensitive,
                        # A mitigation is re-audited the way its audit was.
                        bootstrap=run.fairness_audit.bootstrap if run.fairness_audit_id else 0,
                        random_state=run.seed,
                    ),
                )
                notes += [note] if note else []
        RetrainingRun.objects.filter(pk=run.pk).update(
            followed_up_at=timezone.now(), evaluation=evaluation, follow_up_audit=audit
        )
        target = tr.outcome_after_validation(run.outcome, version_ready=True, submit=submitted)
        if target is not None:
            if target == tr.RUN_CANDIDATE_SUBMITTED:
                reason = f"v{version.number} submitted for review."
            elif not run.auto_submit:
                reason = f"v{version.number} is ready; the policy does not submit automatically."
            else:
                reason = f"v{version.number} is ready but was not submitted."
            _outcome(run, target, actor=actor, reason=" ".join([reason, *notes]))
        audit_record(
            actor=actor,
            action="lifecycle.retraining_run.followed_up",
            obj=run,
            after={
                "version": version.number,
                "submitted": submitted,
                "evaluation": evaluation.pk if evaluation else None,
                "fairness_audit": audit.pk if audit else None,
                "notes": notes,
            },
        )
    return run


def retraining_follow_up_sweep() -> int:
    """Catch up on follow-ups whose registry event was lost (beat); returns how many ran."""
    waiting = RetrainingRun.objects.filter(
        followed_up_at__isnull=True,
        version__isnull=False,
        version__status__in=[VersionStatus.READY, VersionStatus.FAILED],
    ).values_list("version_id", flat=True)
    return sum(retraining_follow_up(version_id=pk) is not None for pk in list(waiting[:100]))


__all__ = [
    "fairness_mitigation_request",
    "next_cron_time",
    "on_event",
    "parse_cron",
    "policy_defaults",
    "retraining_follow_up",
    "retraining_follow_up_sweep",
    "retraining_on_new_dataset",
    "retraining_on_schedule",
    "retraining_policy_set",
    "retraining_run_execute",
    "retraining_run_gave_up",
    "retraining_run_request",
    "retraining_run_trigger",
    "retraining_signals_consume",
]
