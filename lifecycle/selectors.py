"""Reads with rules for the lifecycle app."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from common.errors import DomainError
from common.permissions import get_visible
from lifecycle.models import (
    CandidateMode,
    Deployment,
    Environment,
    EnvironmentTransition,
    Evaluation,
    Explanation,
    RetrainingPolicy,
    RetrainingRun,
    RetrainingSkip,
    RetrainingStrategy,
    ServingLogBatch,
)
from registry.choices import VersionStatus
from registry.gates import check_alias_gates
from registry.models import ModelVersion, RegisteredModel

# The log of an environment is read from its Parquet batches; an export stops here.
MAX_EXPORT_ROWS = 1_000_000


def evaluation_list(*, user: Any, version: ModelVersion) -> QuerySet[Evaluation]:
    return (
        Evaluation.objects.visible_to(user, "view")
        .filter(version=version)
        .select_related("dataset", "champion", "requested_by", "version__registered_model")
        .order_by("-queued_at")
    )


def evaluation_get(*, user: Any, version: ModelVersion, pk: Any) -> Evaluation:
    return get_visible(
        Evaluation.objects.select_related("dataset", "champion", "requested_by", "version"),
        user,
        f"Evaluation {pk}",
        pk=pk,
        version=version,
    )


def latest_evaluation(*, version: ModelVersion) -> Evaluation | None:
    return (
        Evaluation.objects.filter(version=version, status="succeeded")
        .select_related("dataset", "champion")
        .order_by("-finished_at")
        .first()
    )


def explanation_list(*, user: Any, version: ModelVersion) -> QuerySet[Explanation]:
    return (
        Explanation.objects.visible_to(user, "view")
        .filter(version=version)
        .select_related("requested_by", "version__registered_model")
        .order_by("-queued_at", "-pk")
    )


def explanation_get(*, user: Any, version: ModelVersion, pk: Any) -> Explanation:
    return get_visible(
        Explanation.objects.select_related("requested_by", "version__registered_model"),
        user,
        f"Explanation {pk}",
        pk=pk,
        version=version,
    )


def latest_explanation(*, version: ModelVersion) -> Explanation | None:
    """The newest per-prediction explanation job of ``version`` (any status)."""
    return Explanation.objects.filter(version=version).order_by("-queued_at", "-pk").first()


def evaluation_card_section(version: ModelVersion) -> dict[str, Any] | None:
    """The model card's "evaluation" section: the latest evaluation, in short."""
    job = latest_evaluation(version=version)
    if job is None:
        return None
    return {
        "evaluation": job.pk,
        "sha256": job.sha256,
        "dataset": f"{job.dataset.name} v{job.dataset.version}",
        "rows": job.report["rows"],
        "metrics": job.report["metrics"],
        "passed": job.passed,
        "champion": job.champion.number if job.champion else None,
        "champion_metrics": job.champion_report["metrics"] if job.champion_report else None,
        "top_features": [row["feature"] for row in (job.importance or {}).get("features", [])[:5]],
    }


# --- environments and deployments ------------------------------------------------------

_ENV_RELATED = (
    "registered_model",
    "stable_version",
    "candidate_version",
    "target_version",
    "previous_version",
    "deployed_by",
)


def environment_list(*, user: Any, model: RegisteredModel) -> QuerySet[Environment]:
    return (
        Environment.objects.visible_to(user, "view")
        .filter(registered_model=model)
        .select_related(*_ENV_RELATED)
        .order_by("name")
    )


def environment_get(*, user: Any, model: RegisteredModel, name: str) -> Environment:
    return get_visible(
        Environment.objects.select_related(*_ENV_RELATED),
        user,
        f"Environment {name!r} of {model.name}",
        registered_model=model,
        name=name,
    )


def deployment_list(*, user: Any, environment: Environment) -> QuerySet[Deployment]:
    return (
        Deployment.objects.visible_to(user, "view")
        .filter(environment=environment)
        .select_related("version", "requested_by", "environment__registered_model")
        .prefetch_related("analyses")
        .order_by("-queued_at", "-id")
    )


def deployment_get(*, user: Any, environment: Environment, pk: Any) -> Deployment:
    return get_visible(
        Deployment.objects.select_related(
            "version", "requested_by", "environment__registered_model"
        ).prefetch_related("analyses"),
        user,
        f"Deployment {pk}",
        pk=pk,
        environment=environment,
    )


def environment_history(*, environment: Environment, limit: int = 20) -> list[Any]:
    return list(
        EnvironmentTransition.objects.filter(environment=environment)
        .select_related("deployment")
        .order_by("-id")[:limit]
    )


def version_environments(*, version: ModelVersion) -> list[dict[str, Any]]:
    """Where a version is deployed: each environment and the part it plays there."""
    rows = []
    environments = Environment.objects.filter(
        Q(stable_version=version) | Q(candidate_version=version) | Q(target_version=version)
    ).order_by("name")
    for environment in environments:
        shadow = environment.candidate_mode == CandidateMode.SHADOW
        if environment.stable_version_id == version.pk:
            role, share = "stable", 1.0 if shadow else 1 - environment.candidate_share
        elif environment.candidate_version_id == version.pk:
            # A shadow scores its share of the requests but answers none.
            role, share = ("shadow", 0.0) if shadow else ("candidate", environment.candidate_share)
        else:
            role, share = "deploying", 0.0
        rows.append({"environment": environment, "role": role, "share": share})
    return rows


def deployable_versions(
    *, actor: Any, environment: Environment, limit: int = 20
) -> list[ModelVersion]:
    """Ready versions that may go to the environment (a protected one: those its gate takes)."""
    versions = list(
        ModelVersion.objects.filter(
            registered_model_id=environment.registered_model_id, status=VersionStatus.READY
        ).order_by("-number")[:limit]
    )
    if not environment.protected:
        return versions
    allowed = []
    for version in versions:
        try:
            check_alias_gates(actor=actor, alias_name=environment.name, version=version)
        except DomainError:
            continue
        allowed.append(version)
    return allowed


# --- the serving log --------------------------------------------------------------------


def serving_errors(*, environment: Environment, hours: int = 24) -> list[dict[str, Any]]:
    """Recent refused requests, grouped by error code and offending column (newest first)."""
    since = timezone.now() - timedelta(hours=hours)
    counts: Counter = Counter()
    last: dict[tuple[str, str], datetime] = {}
    batches = ServingLogBatch.objects.filter(
        environment=environment, last_at__gte=since, error_count__gt=0
    ).values_list("summary", "last_at")
    for summary, last_at in batches.iterator():
        for code, columns in (summary or {}).get("errors", {}).items():
            for column, count in columns.items():
                counts[(code, column)] += count
                last[(code, column)] = max(last.get((code, column), last_at), last_at)
    return [
        {"code": code, "column": column, "count": count, "last_at": last[(code, column)]}
        for (code, column), count in counts.most_common()
    ]


def serving_traffic(*, environment: Environment, hours: int = 24) -> dict[str, Any]:
    """Requests and errors per version over the last hours (from the batch summaries)."""
    since = timezone.now() - timedelta(hours=hours)
    per_version: dict[int, Counter] = {}
    batches = ServingLogBatch.objects.filter(
        environment=environment, last_at__gte=since
    ).values_list("version__number", "summary")
    for number, summary in batches.iterator():
        counter = per_version.setdefault(number, Counter())
        counter["requests"] += (summary or {}).get("requests", 0)
        counter["errors"] += sum(
            sum(columns.values()) for columns in (summary or {}).get("errors", {}).values()
        )
    return {number: dict(c) for number, c in sorted(per_version.items())}


def serving_log(
    *,
    environment: Environment,
    version: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    shadow: bool | None = None,
    error: bool | None = None,
    limit: int = MAX_EXPORT_ROWS,
) -> Any:
    """The environment's prediction log, filtered (an Arrow table, oldest first)."""
    from lifecycle.serving_logs import read_log

    batches = ServingLogBatch.objects.filter(environment=environment).order_by("first_at", "id")
    if since is not None:
        batches = batches.filter(last_at__gte=since)
    if until is not None:
        batches = batches.filter(first_at__lt=until)
    if version is not None:
        batches = batches.filter(version__number=version)
    if error is True:
        batches = batches.filter(error_count__gt=0)
    if shadow is True:
        batches = batches.filter(shadow_count__gt=0)
    return read_log(
        list(batches),
        version=version,
        since=since,
        until=until,
        shadow=shadow,
        error=error,
        limit=limit,
    )


# --- retraining -------------------------------------------------------------------------


def retraining_policy_get(*, model: RegisteredModel) -> RetrainingPolicy | None:
    """The model's policy; the caller has fetched ``model`` through ``model_get`` (visible)."""
    return (
        RetrainingPolicy.objects.filter(registered_model=model)
        .select_related("registered_model", "training_dataset", "evaluation_dataset", "updated_by")
        .first()
    )


RUN_RELATED = (
    "registered_model",
    "requested_by",
    "parent",
    "version",
    "champion",
    "training_dataset",
    "evaluation_dataset",
    "train_dataset",
    "holdout_dataset",
    "trigger_dataset",
    "alert",
)


def retraining_run_list(*, user: Any, model: RegisteredModel) -> QuerySet[RetrainingRun]:
    return (
        RetrainingRun.objects.visible_to(user, "view")
        .filter(registered_model=model)
        .select_related(*RUN_RELATED)
        .order_by("-queued_at", "-pk")
    )


def mitigation_run_list(*, user: Any, version: ModelVersion) -> QuerySet[RetrainingRun]:
    """The fairness mitigations of a version: its runs with the ``fairness_mitigation``
    strategy (from its failed audits, or asked for with the strategy by name)."""
    return (
        RetrainingRun.objects.visible_to(user, "view")
        .filter(parent=version, strategy=RetrainingStrategy.FAIRNESS_MITIGATION)
        .select_related(*RUN_RELATED, "fairness_audit", "follow_up_audit")
        .order_by("-queued_at", "-pk")
    )


def retraining_run_get(*, user: Any, model: RegisteredModel, pk: Any) -> RetrainingRun:
    return get_visible(
        RetrainingRun.objects.select_related(*RUN_RELATED, "signal", "fairness_audit"),
        user,
        f"Retraining run {pk}",
        pk=pk,
        registered_model=model,
    )


def retraining_skip_list(*, user: Any, model: RegisteredModel) -> QuerySet[RetrainingSkip]:
    return (
        RetrainingSkip.objects.visible_to(user, "view")
        .filter(registered_model=model)
        .select_related("alert", "dataset")
        .order_by("-created_at", "-pk")
    )


def retraining_run_of(*, version: ModelVersion) -> RetrainingRun | None:
    """The run that produced ``version`` (visible with it), or None."""
    return RetrainingRun.objects.filter(version=version).select_related(*RUN_RELATED).first()


def retraining_runs_for_alerts(
    *, user: Any, alert_ids: list[int]
) -> dict[int, list[RetrainingRun]]:
    """Runs started by these alerts, by alert id (what the alert led to)."""
    found: dict[int, list[RetrainingRun]] = {}
    runs = (
        RetrainingRun.objects.visible_to(user, "view")
        .filter(alert_id__in=alert_ids)
        .select_related("registered_model", "version")
        .order_by("queued_at")
    )
    for run in runs:
        found.setdefault(run.alert_id, []).append(run)
    return found


def retraining_skips_for_alerts(
    *, user: Any, alert_ids: list[int]
) -> dict[int, list[RetrainingSkip]]:
    found: dict[int, list[RetrainingSkip]] = {}
    for skip in RetrainingSkip.objects.visible_to(user, "view").filter(alert_id__in=alert_ids):
        found.setdefault(skip.alert_id, []).append(skip)
    return found
