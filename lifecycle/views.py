"""Lifecycle contributions to the approver UI."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from lifecycle import evaluation as ev
from lifecycle.charts import importance_chart
from lifecycle.selectors import latest_evaluation
from registry.models import ModelVersion


def evaluation_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any] | None:
    """The version page's "Evaluation" card: metrics beside the champion, importance."""
    job = latest_evaluation(version=version)
    if job is None:
        return {
            "id": "evaluation",
            "title": "Evaluation",
            "template": "lifecycle/_evaluation_panel.html",
            "evaluation": None,
        }
    comparison = (
        ev.compare_reports(job.report, job.champion_report) if job.champion_report else None
    )
    importance = job.importance["features"] if job.importance else []
    # Importance is compared with the parent's latest evaluation when there is
    # one (what changed in this retraining), else with the champion scored in
    # the same job (what changes if this version replaces it).
    parent_job = latest_evaluation(version=version.parent) if version.parent_id else None
    baseline, baseline_label = None, ""
    if parent_job and parent_job.importance:
        baseline, baseline_label = parent_job.importance, f"parent v{version.parent.number}"
    elif job.champion_importance and job.champion:
        baseline, baseline_label = job.champion_importance, f"champion v{job.champion.number}"
    importance_change = (
        ev.compare_importance(job.importance, baseline) if baseline and job.importance else None
    )
    top = max((abs(row["mean"]) for row in importance), default=0) or 1
    return {
        "id": "evaluation",
        "title": "Evaluation",
        "template": "lifecycle/_evaluation_panel.html",
        "evaluation": job,
        "comparison": comparison,
        "metrics": job.report["metrics"],
        "importance": [
            {**row, "width": round(100 * abs(row["mean"]) / top, 1)} for row in importance
        ],
        "importance_change": importance_change,
        "baseline_label": baseline_label,
        "importance_chart": importance_chart(job.importance, baseline, baseline_label, version),
        "confusion": [
            {"label": label, "cells": cells}
            for label, cells in zip(
                job.report.get("classes", []), job.report.get("confusion_matrix", []), strict=False
            )
        ],
    }
