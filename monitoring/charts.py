"""Plotly figure specs (plain dicts) for the dashboard, drawn by common/charts.js."""

from __future__ import annotations

from typing import Any

from monitoring import drift
from monitoring.models import CheckRun, Monitor, ReferenceProfile
from monitoring.privacy import summarized_on
from monitoring.windows import window_batches


def _threshold_line(x: list[Any], value: float, name: str) -> dict[str, Any]:
    return {
        "x": [x[0], x[-1]],
        "y": [value, value],
        "mode": "lines",
        "name": name,
        "line": {"dash": "dash", "color": "#c0392b"},
    }


def drift_over_time(runs: list[CheckRun], monitor: Monitor) -> dict[str, Any]:
    x = [r.window_end.isoformat() for r in runs]
    columns: dict[str, list[Any]] = {}
    outputs: dict[str, list[Any]] = {}
    for i, run in enumerate(runs):
        for col in run.drift.get("columns", []):
            columns.setdefault(col["column"], [None] * len(runs))[i] = col.get("psi")
        for part in (run.output_drift or {}).values():
            for col in part.get("columns", []):
                outputs.setdefault(col["column"], [None] * len(runs))[i] = col.get("psi")
    data = [
        {"x": x, "y": ys, "mode": "lines+markers", "name": f"PSI {name}"}
        for name, ys in sorted(columns.items())
    ]
    data += [
        {
            "x": x,
            "y": ys,
            "mode": "lines+markers",
            "name": f"PSI {name} (output)",
            "line": {"dash": "dot", "width": 3},
        }
        for name, ys in sorted(outputs.items())
    ]
    data.append(
        {
            "x": x,
            "y": [r.drift_share for r in runs],
            "mode": "lines+markers",
            "name": "drift share",
            "line": {"width": 3, "color": "#222"},
        }
    )
    data.append(_threshold_line(x, monitor.thresholds["psi"], "PSI threshold"))
    data.append(_threshold_line(x, monitor.thresholds["drift_share"], "drift-share threshold"))
    return {
        "data": data,
        "layout": {
            "title": {"text": "Drift per feature and output over time"},
            "yaxis": {"title": "PSI"},
        },
    }


def metrics_over_time(runs: list[CheckRun], monitor: Monitor) -> dict[str, Any]:
    x = [r.window_end.isoformat() for r in runs]
    names: dict[str, list[Any]] = {}
    for i, run in enumerate(runs):
        for name, value in (run.metrics.get("values") or {}).items():
            names.setdefault(name, [None] * len(runs))[i] = value
    data = [{"x": x, "y": ys, "mode": "lines+markers", "name": n} for n, ys in names.items()]
    champion: dict[str, list[Any]] = {}
    for i, run in enumerate(runs):
        theirs = (run.metrics.get("champion") or {}).get("values") or {}
        for name, value in theirs.items():
            champion.setdefault(name, [None] * len(runs))[i] = value
    data += [
        {"x": x, "y": ys, "mode": "lines", "name": f"champion {n}", "line": {"dash": "dot"}}
        for n, ys in champion.items()
    ]
    for name, value in (monitor.version.metrics or {}).items():
        if name in names and isinstance(value, int | float):
            data.append(_threshold_line(x, float(value), f"{name} baseline"))
    return {
        "data": data,
        "layout": {"title": {"text": "Performance over time (labelled rows)"}},
    }


def feature_overlay(
    monitor: Monitor | None, run: CheckRun | None, feature: str | None
) -> dict[str, Any] | None:
    """Reference vs current share per PSI bin (numeric) or category, from summaries."""
    if monitor is None or run is None:
        return None
    profile_row = ReferenceProfile.objects.filter(version=monitor.version).first()
    if profile_row is None:
        return None
    from monitoring.profiles import profile_load

    profile = profile_load(profile_row)
    names = [n for n, p in profile.columns.items() if not isinstance(p, drift.UnsupportedProfile)]
    if not names:
        return None
    feature = feature if feature in names else names[0]
    batches = summarized_on(window_batches(monitor, run.window_start, run.window_end), profile)
    summaries = [drift.Summary.from_dict(b.summary) for b in batches if b.summary]
    if not summaries:
        return None
    merged = drift.merge_summaries(summaries).columns.get(feature)
    ref = profile.columns[feature]
    if merged is None:
        return None
    if isinstance(ref, drift.NumericProfile):
        edges = [float(e) for e in ref.edges]
        labels = (
            [f"< {edges[0]:.3g}"]
            + [f"{edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
            + [f">= {edges[-1]:.3g}"]
        )
        ref_counts = [float(c) for c in ref.counts]
        cur_counts = [float(c) for c in merged.counts]
    else:
        labels = [str(c) for c in ref.labels]
        ref_counts = [float(c) for c in ref.counts]
        cur_counts = [float(merged.counts.get(c, 0)) for c in labels]
    ref_total, cur_total = sum(ref_counts) or 1, sum(cur_counts) or 1
    return {
        "feature": feature,
        "features": names,
        "data": [
            {
                "type": "bar",
                "x": labels,
                "y": [c / ref_total for c in ref_counts],
                "name": "reference",
            },
            {
                "type": "bar",
                "x": labels,
                "y": [c / cur_total for c in cur_counts],
                "name": "current",
            },
        ],
        "layout": {
            "title": {"text": f"{feature}: reference vs current window"},
            "barmode": "group",
            "yaxis": {"title": "share of rows"},
        },
    }
