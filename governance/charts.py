"""Plotly specs of the governance panels (drawn by the bundled plotly, no CDN)."""

from __future__ import annotations

from typing import Any


def group_label(group: dict[str, Any]) -> str:
    """``{"sex": "F", "age_band": "18-30"}`` -> ``"F & 18-30"``."""
    return " & ".join(str(v) for v in group.values())


GROUP_METRIC = {"classification": "selection_rate", "regression": "rmse"}


def group_chart(scope: dict[str, Any], task: str, thresholds: dict[str, Any]) -> dict[str, Any]:
    """Per-group bars of the metric the main rule is about, with its threshold line.

    Classification: selection rate per group; the line is the four-fifths rule
    (ratio floor x the highest included rate): a bar below it fails the
    demographic-parity ratio. Regression: RMSE per group; the line is the
    ratio ceiling x the lowest included RMSE. Excluded (too small) groups are grey.
    """
    metric = GROUP_METRIC[task]
    groups = scope["groups"]
    labels = [group_label(g["group"]) for g in groups]
    values = [g["metrics"].get(metric) for g in groups]
    included = [
        v for g, v in zip(groups, values, strict=True) if not g["excluded"] and v is not None
    ]
    colours = ["#b8bcc4" if g["excluded"] else "#2f6fde" for g in groups]
    shapes, annotations = [], []
    if included:
        if task == "classification":
            floor = thresholds.get("demographic_parity_ratio_min", 0.8)
            line = floor * max(included) if floor is not None else None
            label = f"{floor} x highest rate"
        else:
            ceiling = thresholds.get("rmse_ratio_max", 1.25)
            line = ceiling * min(included) if ceiling is not None else None
            label = f"{ceiling} x lowest RMSE"
        if line is not None:
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": line,
                    "y1": line,
                    "line": {"color": "#c0392b", "dash": "dash"},
                }
            )
            annotations.append(
                {
                    "xref": "paper",
                    "x": 1,
                    "y": line,
                    "text": label,
                    "showarrow": False,
                    "xanchor": "right",
                    "yanchor": "bottom",
                    "font": {"color": "#c0392b"},
                }
            )
    return {
        "data": [
            {
                "type": "bar",
                "x": labels,
                "y": values,
                "marker": {"color": colours},
                "text": [f"n={g['count']}" for g in groups],
                "hovertemplate": "%{x}: %{y:.4f} (%{text})<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": f"{metric.replace('_', ' ')} by {scope['name']}"},
            "shapes": shapes,
            "annotations": annotations,
            "yaxis": {"rangemode": "tozero"},
        },
    }
