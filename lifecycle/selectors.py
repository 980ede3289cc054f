"""Reads with rules for the lifecycle app."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from common.permissions import get_visible
from lifecycle.models import Evaluation, RetrainingPolicy, RetrainingRun, RetrainingSkip
from registry.models import ModelVersion, RegisteredModel


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
