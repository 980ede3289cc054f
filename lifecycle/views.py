"""Lifecycle contributions to the approver UI."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from lifecycle import evaluation as ev
from lifecycle.selectors import latest_evaluation
from registry.models import ModelVersion


def importance_chart(
    importance: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
    baseline_label: str,
    version: ModelVersion,
) -> dict[str, Any] | None:
    """Plotly spec: permutation importance bars (± std), beside the baseline's."""
    if not importance:
        return None
    rows = list(reversed(importance["features"]))  # plotly draws bottom-up
    features = [row["feature"] for row in rows]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": f"v{version.number}",
            "y": features,
            "x": [row["mean"] for row in rows],
            "error_x": {"type": "data", "array": [row["std"] for row in rows]},
        }
    ]
    if baseline:
        before = {row["feature"]: row["mean"] for row in baseline["features"]}
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": baseline_label,
                "y": features,
                "x": [before.get(f) for f in features],
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Permutation importance ({importance['scoring']})"},
            "barmode": "group",
            "height": 120 + 28 * len(features) * (2 if baseline else 1),
            "margin": {"l": 140},
            "xaxis": {"title": {"text": "drop in score when shuffled"}},
        },
    }


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
