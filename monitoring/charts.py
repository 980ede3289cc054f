"""Plotly figure specs (plain dicts) for the dashboard, drawn by common/charts.js."""

from __future__ import annotations

from typing import Any

import numpy as np

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


PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def metrics_over_time(runs: list[CheckRun], monitor: Monitor) -> dict[str, Any]:
    """Each metric per check, with the baseline each check judged it against (dashed)."""
    x = [r.window_end.isoformat() for r in runs]
    names: dict[str, list[Any]] = {}
    baselines: dict[str, list[Any]] = {}
    labels: list[str] = []
    for i, run in enumerate(runs):
        for name, value in (run.metrics.get("values") or {}).items():
            names.setdefault(name, [None] * len(runs))[i] = value
        for name, value in (run.metrics.get("baseline") or {}).items():
            baselines.setdefault(name, [None] * len(runs))[i] = value
        label = (run.metrics.get("baseline_source") or {}).get("label")
        if label and label not in labels:
            labels.append(label)
    # A metric and its baseline share a colour (and a legend group).
    colour = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}
    data = [
        {
            "x": x,
            "y": ys,
            "mode": "lines+markers",
            "name": n,
            "legendgroup": n,
            "line": {"color": colour[n]},
        }
        for n, ys in names.items()
    ]
    champion: dict[str, list[Any]] = {}
    for i, run in enumerate(runs):
        theirs = (run.metrics.get("champion") or {}).get("values") or {}
        for name, value in theirs.items():
            champion.setdefault(name, [None] * len(runs))[i] = value
    data += [
        {"x": x, "y": ys, "mode": "lines", "name": f"champion {n}", "line": {"dash": "dot"}}
        for n, ys in champion.items()
    ]
    data += [
        {
            "x": x,
            "y": ys,
            "mode": "lines",
            "name": f"{n} baseline",
            "legendgroup": n,
            "line": {"dash": "dash", "shape": "hv", "color": colour[n]},
        }
        for n, ys in baselines.items()
        if n in names
    ]
    judged = f" — baseline: {'; '.join(labels)}" if labels else ""
    return {
        "data": data,
        "layout": {"title": {"text": f"Performance over time (labelled rows){judged}"}},
    }


def short_number(value: float) -> str:
    """A bin edge people can read: 3 significant digits, k/M/G for large magnitudes
    (``20450.0`` -> ``"20.4k"``), never scientific notation."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{_positional(value / limit)}{suffix}"
    return _positional(value)


def _positional(value: float) -> str:
    return np.format_float_positional(value, precision=3, unique=True, fractional=False, trim="-")


def bin_labels(edges: list[float]) -> list[str]:
    """Labels of the bins ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    short = [short_number(e) for e in edges]
    return (
        [f"< {short[0]}"]
        + [f"{short[i]} to {short[i + 1]}" for i in range(len(short) - 1)]
        + [f"≥ {short[-1]}"]
    )


def cumulative_shares(counts: list[float]) -> list[float]:
    """Share of rows below each interior edge: ``cumulative[i]`` is the share of rows
    in the bins before edge ``i`` (the empirical CDF just below the edge)."""
    total = sum(counts) or 1.0
    running, shares = 0.0, []
    for count in counts[:-1]:
        running += count
        shares.append(running / total)
    return shares


def feature_overlay(
    monitor: Monitor | None, run: CheckRun | None, feature: str | None
) -> dict[str, Any] | None:
    """Reference vs current share per PSI bin (numeric) or category, from summaries.

    Numeric features also get ``cumulative``: the share of rows below each bin edge on
    a numeric axis (the two empirical CDFs at the edges; their largest gap is a lower
    bound of the KS statistic), drawn beside the histogram.
    """
    if monitor is None or run is None:
        return None
    version = run.version or monitor.version
    profile_row = ReferenceProfile.objects.filter(version=version).first()
    if profile_row is None:
        return None
    from monitoring.profiles import profile_load

    profile = profile_load(profile_row)
    names = [n for n, p in profile.columns.items() if not isinstance(p, drift.UnsupportedProfile)]
    if not names:
        return None
    feature = feature if feature in names else names[0]
    batches = summarized_on(
        window_batches(monitor, run.window_start, run.window_end, version=version), profile
    )
    summaries = [drift.Summary.from_dict(b.summary) for b in batches if b.summary]
    if not summaries:
        return None
    merged = drift.merge_summaries(summaries).columns.get(feature)
    ref = profile.columns[feature]
    if merged is None:
        return None
    cumulative = None
    if isinstance(ref, drift.NumericProfile):
        edges = [float(e) for e in ref.edges]
        labels = bin_labels(edges)
        ref_counts = [float(c) for c in ref.counts]
        cur_counts = [float(c) for c in merged.counts]
        cumulative = _cumulative_chart(feature, edges, ref_counts, cur_counts)
    else:
        labels = [str(c) for c in ref.labels]
        ref_counts = [float(c) for c in ref.counts]
        cur_counts = [float(merged.counts.get(c, 0)) for c in labels]
    ref_total, cur_total = sum(ref_counts) or 1, sum(cur_counts) or 1
    return {
        "feature": feature,
        "features": names,
        "cumulative": cumulative,
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
            "yaxis": {"title": {"text": "share of rows"}, "tickformat": ".0%"},
            "xaxis": {"title": {"text": feature}, "automargin": True, "tickangle": -30},
            "margin": {"t": 30, "r": 10, "b": 90, "l": 60},
            "height": 340,
        },
    }


def _cumulative_chart(
    feature: str, edges: list[float], ref_counts: list[float], cur_counts: list[float]
) -> dict[str, Any]:
    ref_cdf, cur_cdf = cumulative_shares(ref_counts), cumulative_shares(cur_counts)
    gap = max((abs(a - b) for a, b in zip(ref_cdf, cur_cdf, strict=True)), default=0.0)
    line = {"mode": "lines+markers", "line": {"shape": "linear"}}
    return {
        "data": [
            {"x": edges, "y": ref_cdf, "name": "reference", **line},
            {"x": edges, "y": cur_cdf, "name": "current", **line},
        ],
        "layout": {
            "title": {"text": f"{feature}: cumulative share (largest gap {gap:.2f})"},
            "yaxis": {"title": {"text": "share of rows below"}, "tickformat": ".0%"},
            # SI suffixes (20k, 1.5M) for large values; plain numbers otherwise (no "500m").
            "xaxis": {
                "title": {"text": feature},
                "automargin": True,
                **({"tickformat": "~s"} if max(map(abs, edges), default=0) >= 1e4 else {}),
            },
            "margin": {"t": 30, "r": 10, "b": 90, "l": 60},
            "height": 340,
        },
        "largest_gap": gap,
    }
