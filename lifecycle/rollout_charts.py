"""A rollout's analysis figures over time, as a plotly spec (pure: no Django).

One point per analysis (a ``RolloutAnalysis`` row: the replay, each canary step's
interval, each shadow check), one small chart per check, the candidate against the
stable version with the line that the check fails beyond, as
``lifecycle.rollout_analysis`` judged it:

- error rate: fails when the candidate's exceeds the stable's by more than the
  limit, so the line is the stable's rate plus the limit, point by point;
- p99 latency: the limit is the stable's p99 times the ratio plus the slack, as
  each analysis computed it (``limit`` in its figures);
- prediction PSI and disagreement: a figure of the candidate against the stable
  version already, with its limit;
- metric: the candidate's drop against the stable's (``drop``), with ``metric_drop``;
- fairness (when the analysis has it): each version's gap between groups, the line
  the stable's gap plus ``fairness_gap_increase``.

A check that could not be judged at a point (inconclusive, skipped) leaves a gap. A
chart is drawn only for the checks that have at least one figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

FAIL_COLOUR = "#b3261e"
CANDIDATE_COLOUR = "#2453b3"
STABLE_COLOUR = "#555555"
LIMIT_LINE = {"dash": "dash", "color": FAIL_COLOUR, "width": 1.5}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _plus(a: Any, b: Any) -> float | None:
    a, b = _number(a), _number(b)
    return None if a is None or b is None else a + b


# Each check: its title, the y-axis title, and how to read (candidate, stable, limit)
# from its figures. ``stable`` None: the figure is already candidate against stable.
CHECKS: tuple[tuple[str, str, str, Any], ...] = (
    (
        "error_rate",
        "Error rate",
        "share of requests",
        lambda c: (c.get("candidate"), c.get("stable"), _plus(c.get("stable"), c.get("limit"))),
    ),
    (
        "latency_p99",
        "p99 latency",
        "ms",
        lambda c: (c.get("candidate"), c.get("stable"), c.get("limit")),
    ),
    (
        "prediction_psi",
        "Prediction drift (PSI against stable)",
        "PSI",
        lambda c: (c.get("psi"), None, c.get("limit")),
    ),
    (
        "disagreement",
        "Disagreement with stable",
        "share of rows",
        lambda c: (c.get("rate"), None, c.get("limit")),
    ),
    (
        "metric",
        "Metric drop against stable",
        "drop",
        lambda c: (c.get("drop"), None, c.get("limit")),
    ),
    (
        "fairness",
        "Fairness gap between groups",
        "gap",
        lambda c: (c.get("candidate"), c.get("stable"), _plus(c.get("stable"), c.get("limit"))),
    ),
)


def point_label(analysis: Mapping[str, Any]) -> str:
    """What one point is, in the hover text: "replay", "step 2 (25%)", "shadow"."""
    kind = analysis.get("kind", "")
    step = analysis.get("step_index") or 0
    if kind == "step" and step:
        share = _number(analysis.get("share"))
        return f"step {step}" + (f" ({share:.0%})" if share is not None else "")
    return str(kind)


def series(analyses: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """Per check: x (when), candidate, stable, limit and verdict, one entry per analysis
    (one that judged nothing, too few requests, is a gap in every line)."""
    rows = list(analyses)
    out: dict[str, dict[str, list[Any]]] = {}
    for name, _title, _unit, read in CHECKS:
        columns: dict[str, list[Any]] = {
            k: [] for k in ("x", "label", "candidate", "stable", "limit", "verdict")
        }
        for a in rows:
            check = ((a.get("figures") or {}).get("checks") or {}).get(name)
            candidate, stable, limit = read(check) if isinstance(check, Mapping) else (None,) * 3
            columns["x"].append(a["at"])
            columns["label"].append(point_label(a))
            columns["candidate"].append(_number(candidate))
            columns["stable"].append(_number(stable))
            columns["limit"].append(_number(limit))
            columns["verdict"].append(check.get("verdict") if isinstance(check, Mapping) else None)
        if any(v is not None for v in columns["candidate"]):
            out[name] = columns
    return out


def summary(analyses: Sequence[Mapping[str, Any]]) -> str:
    """The fold's one line: how many analyses, how many failed, what is drawn."""
    drawn = series(analyses)
    rows = list(analyses)
    failed = sum(1 for a in rows if a.get("verdict") == "fail")
    titles = [title.split(" (")[0].lower() for name, title, _u, _r in CHECKS if name in drawn]
    return (
        f"{len(rows)} analys{'is' if len(rows) == 1 else 'es'} over time"
        + (f", {failed} failed" if failed else "")
        + (f": {', '.join(titles)}" if titles else "")
    )


def analysis_chart(analyses: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Plotly spec: one row per check with figures, sharing the time axis. ``analyses``:
    dicts with ``at`` (ISO time), ``kind``, ``step_index``, ``share``, ``verdict`` and
    ``figures`` (the ``RolloutAnalysis`` row's), oldest first. None when nothing to draw."""
    drawn = series(analyses)
    if not drawn:
        return None
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "grid": {
            "rows": len(drawn),
            "columns": 1,
            "pattern": "coupled",
            "roworder": "top to bottom",
        },
        "height": 60 + 170 * len(drawn),
        "margin": {"t": 30, "r": 10, "b": 40, "l": 60},
        "showlegend": False,
        "annotations": [],
    }
    titles = {name: (title, unit) for name, title, unit, _r in CHECKS}
    for i, (name, columns) in enumerate(drawn.items(), start=1):
        axis = "" if i == 1 else str(i)
        title, unit = titles[name]
        common = {"x": columns["x"], "xaxis": "x", "yaxis": f"y{axis}", "text": columns["label"]}
        data.append(
            {
                **common,
                "y": columns["candidate"],
                "name": f"{title}: candidate",
                "mode": "lines+markers",
                "line": {"color": CANDIDATE_COLOUR},
                # A failed point is red: the analysis that counted against the candidate.
                "marker": {
                    "size": 8,
                    "color": [
                        FAIL_COLOUR if v == "fail" else CANDIDATE_COLOUR for v in columns["verdict"]
                    ],
                },
                "hovertemplate": "%{text}: %{y:.4g} (candidate)<extra></extra>",
            }
        )
        if any(v is not None for v in columns["stable"]):
            data.append(
                {
                    **common,
                    "y": columns["stable"],
                    "name": f"{title}: stable",
                    "mode": "lines+markers",
                    "line": {"color": STABLE_COLOUR},
                    "hovertemplate": "%{text}: %{y:.4g} (stable)<extra></extra>",
                }
            )
        if any(v is not None for v in columns["limit"]):
            data.append(
                {
                    **common,
                    "y": columns["limit"],
                    "name": f"{title}: fails above",
                    # A dash at each point too, so that a single analysis shows its limit.
                    "mode": "lines+markers",
                    "line": {**LIMIT_LINE, "shape": "hv"},
                    "marker": {
                        "symbol": "line-ew-open",
                        "size": 16,
                        "color": FAIL_COLOUR,
                        "line": {"width": 2, "color": FAIL_COLOUR},
                    },
                    "hovertemplate": "%{text}: fails above %{y:.4g}<extra></extra>",
                }
            )
        layout[f"yaxis{axis}"] = {"title": {"text": unit}, "rangemode": "tozero"}
        layout["annotations"].append(
            {
                "text": f"<b>{title}</b> — candidate (blue), stable (grey), fails above (dashed)"
                if i == 1
                else f"<b>{title}</b>",
                "xref": "paper",
                "yref": f"y{axis} domain",
                "x": 0,
                "y": 1.0,
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 12},
            }
        )
    return {"data": data, "layout": layout}
