"""Plotly specs of the lifecycle panels (drawn by the bundled plotly, no CDN)."""

from __future__ import annotations

from typing import Any

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
            "marker": {"color": ["#b3261e" if row["mean"] < 0 else "#2453b3" for row in rows]},
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
            # Negative importances (shuffling helped) are drawn left of a visible zero.
            "xaxis": {
                "title": {"text": "drop in score when shuffled (negative: shuffling helped)"},
                "zeroline": True,
                "zerolinewidth": 2,
            },
        },
    }
