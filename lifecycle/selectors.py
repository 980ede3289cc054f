"""Reads with rules for the lifecycle app."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from common.permissions import get_visible
from lifecycle.models import Evaluation
from registry.models import ModelVersion


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
