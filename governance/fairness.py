"""Fairness engine: group metrics, disparities and pass/fail rules for a fairness audit.

Pure module: numpy and pandas only at import time (no Django, nothing else from the
project). fairlearn is the *definition* the tests check this module against; it is
imported lazily, and only by the optional :func:`mitigate` helper.

Why not call fairlearn directly: ``MetricFrame`` runs every metric function through
pandas ``groupby().apply`` and scikit-learn's input validation, which takes tens of
seconds on a million rows. Every binary-classification metric here is a function of
four counts per group (true/false x positive/negative), so one ``np.bincount`` over
``group x y_true x y_pred`` cells gives them all; regression metrics are per-group sums.

See ``docs/fairness.md`` for the full semantics (undefined values, exclusion of small
groups, "not computable", bootstrap, regression disparities).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "CONFIDENCE_LEVEL",
    "DEFAULT_THRESHOLDS",
    "MISSING_GROUP",
    "FairnessInputError",
    "audit",
    "fill_missing_groups",
    "mitigate",
    "skops_exportable",
]

Task = Literal["classification", "regression"]

MISSING_GROUP = "<missing>"
"""Label of the explicit group made of rows whose sensitive value is missing."""

CONFIDENCE_LEVEL = 0.95
"""Coverage of the bootstrap percentile intervals."""

SCHEMA_VERSION = 1

DEFAULT_THRESHOLDS: Mapping[str, float | None] = MappingProxyType(
    {
        # Classification. The ratio floor is the four-fifths rule (EEOC 29 CFR 1607.4(D)).
        "demographic_parity_ratio_min": 0.8,
        "demographic_parity_difference_max": 0.1,
        "equalized_odds_ratio_min": 0.8,
        "equalized_odds_difference_max": 0.1,
        "equal_opportunity_difference_max": 0.1,
        # Regression: worst group error over best group error (>= 1).
        "rmse_ratio_max": 1.25,
        "mae_ratio_max": 1.25,
        # Differences are in the target's units, so there is no sensible default: off.
        "rmse_difference_max": None,
        "mae_difference_max": None,
    }
)
"""Thresholds used for keys the caller leaves out. ``None`` switches a rule off."""


class FairnessInputError(ValueError):
    """The inputs to an audit cannot be audited (NaN predictions, bad labels, ...)."""


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class _Rule:
    key: str  # threshold key, e.g. "demographic_parity_ratio_min"
    disparity: str  # disparity it reads, e.g. "demographic_parity_ratio"
    bound: Literal["min", "max"]


_RULES: Mapping[str, tuple[_Rule, ...]] = {
    "classification": (
        _Rule("demographic_parity_ratio_min", "demographic_parity_ratio", "min"),
        _Rule("demographic_parity_difference_max", "demographic_parity_difference", "max"),
        _Rule("equalized_odds_ratio_min", "equalized_odds_ratio", "min"),
        _Rule("equalized_odds_difference_max", "equalized_odds_difference", "max"),
        _Rule("equal_opportunity_difference_max", "equal_opportunity_difference", "max"),
    ),
    "regression": (
        _Rule("rmse_ratio_max", "rmse_ratio", "max"),
        _Rule("rmse_difference_max", "rmse_difference", "max"),
        _Rule("mae_ratio_max", "mae_ratio", "max"),
        _Rule("mae_difference_max", "mae_difference", "max"),
    ),
}

_UNDEFINED_REASONS: Mapping[str, str] = {
    "tpr": "no rows with y_true == pos_label in this group",
    "fnr": "no rows with y_true == pos_label in this group",
    "fpr": "no rows with y_true != pos_label in this group",
    "precision": "no rows with y_pred == pos_label in this group",
    "roc_auc": "only one class of y_true in this group",
}


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class _Column:
    """One sensitive column, encoded: ``codes[i]`` indexes ``labels``."""

    name: str
    codes: np.ndarray
    labels: list[Any]


@dataclass(frozen=True)
class _Scope:
    """A way of splitting the rows into groups: one sensitive column or their intersection."""

    name: str
    features: list[str]
    labels: list[dict[str, Any]]  # one {feature: value} dict per group
    member: np.ndarray  # finest group -> index of its group in this scope


def _to_1d(name: str, values: Any) -> np.ndarray:
    if isinstance(values, pd.DataFrame):
        if values.shape[1] != 1:
            raise FairnessInputError(f"{name} must be one-dimensional, got {values.shape[1]} cols")
        values = values.iloc[:, 0]
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise FairnessInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _refuse_missing(name: str, arr: np.ndarray) -> None:
    n_missing = int(np.count_nonzero(pd.isna(arr)))
    if n_missing:
        raise FairnessInputError(
            f"{name} contains {n_missing} missing value(s) (NaN/None) out of {arr.size}; "
            "an audit needs a prediction and a label for every row"
        )


def _as_float(name: str, arr: np.ndarray) -> np.ndarray:
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise FairnessInputError(f"{name} must be numeric, got dtype {arr.dtype}") from exc
    n_inf = int(np.count_nonzero(np.isinf(out)))
    if n_inf:
        raise FairnessInputError(f"{name} contains {n_inf} infinite value(s)")
    return out


def _binarize(y_true: np.ndarray, y_pred: np.ndarray, pos_label: Any) -> tuple[np.ndarray, ...]:
    """Map labels to booleans ``== pos_label`` after checking the task is really binary."""
    labels = set(pd.unique(y_true).tolist()) | set(pd.unique(y_pred).tolist())
    shown = sorted(map(repr, labels))
    if len(labels) > 2:
        raise FairnessInputError(
            f"classification audits are binary; y_true and y_pred hold {len(labels)} "
            f"distinct labels: {', '.join(shown[:10])}"
        )
    numeric = all(isinstance(v, (int, float, np.number)) for v in labels)
    if pos_label not in labels and (len(labels) == 2 or not numeric):
        raise FairnessInputError(
            f"pos_label={pos_label!r} is not one of the labels ({', '.join(shown)}); "
            "pass pos_label= explicitly"
        )
    return np.asarray(y_true == pos_label, dtype=bool), np.asarray(y_pred == pos_label, dtype=bool)


def _named_columns(sensitive_features: Any) -> list[tuple[str, pd.Series]]:
    """Split the sensitive features into named columns, naming them as fairlearn does."""
    if isinstance(sensitive_features, pd.Series):
        name = sensitive_features.name
        return [(str(name) if name is not None else "sensitive_feature_0", sensitive_features)]
    if isinstance(sensitive_features, Mapping):
        sensitive_features = pd.DataFrame(dict(sensitive_features))
    if isinstance(sensitive_features, pd.DataFrame):
        return [
            (str(c), sensitive_features.iloc[:, i])
            for i, c in enumerate(sensitive_features.columns)
        ]
    arr = np.asarray(sensitive_features)
    if arr.ndim == 1:
        return [("sensitive_feature_0", pd.Series(arr))]
    if arr.ndim == 2:
        return [(f"sensitive_feature_{i}", pd.Series(arr[:, i])) for i in range(arr.shape[1])]
    raise FairnessInputError(f"sensitive_features has too many dimensions: {arr.shape}")


def _factorize(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Sorted codes (``-1`` for missing) and labels; mixed-type columns sort by repr."""
    try:
        codes, uniques = pd.factorize(values, sort=True)
        return codes, list(uniques)
    except TypeError:
        codes, uniques = pd.factorize(values, sort=False)
        order = sorted(
            range(len(uniques)), key=lambda i: (type(uniques[i]).__name__, repr(uniques[i]))
        )
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        codes = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
        return codes, [uniques[i] for i in order]


def _encode_column(name: str, values: pd.Series) -> _Column:
    codes, uniques = _factorize(values)
    labels = [_json_label(v) for v in uniques]
    missing = codes < 0
    if missing.any():
        if MISSING_GROUP in labels:
            raise FairnessInputError(
                f"sensitive feature {name!r} has missing values and also the value "
                f"{MISSING_GROUP!r}, which is reserved for them"
            )
        codes = np.where(missing, len(labels), codes)
        labels.append(MISSING_GROUP)
    return _Column(name=name, codes=codes.astype(np.intp, copy=False), labels=labels)


def _encode_sensitive(sensitive_features: Any, n: int) -> list[_Column]:
    named = _named_columns(sensitive_features)
    if not named:
        raise FairnessInputError("sensitive_features has no columns")
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise FairnessInputError(f"duplicate sensitive feature names: {names}")
    columns = []
    for name, values in named:
        if len(values) != n:
            raise FairnessInputError(
                f"sensitive feature {name!r} has {len(values)} rows, y_true has {n}"
            )
        columns.append(_encode_column(name, values.reset_index(drop=True)))
    return columns


def _json_label(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


# --------------------------------------------------------------------------- groups


def _dense_sorted_codes(values: np.ndarray) -> np.ndarray:
    """Replace integer keys by their rank among the distinct keys (hashing, no full sort)."""
    codes, uniques = pd.factorize(values, sort=False)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[codes]


def _cells(columns: list[_Column], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Finest groups: the observed combinations of every sensitive column.

    Returns the per-row finest-group id and, for each finest group, its code in each
    column (shape ``(n_finest, n_columns)``). Ids are in lexicographic label order.
    """
    if len(columns) == 1:
        gid = columns[0].codes
        return gid, np.arange(len(columns[0].labels))[:, None]
    key = columns[0].codes.astype(np.int64)
    for column in columns[1:]:
        # Re-densify after every step so the mixed-radix key can never overflow.
        key = _dense_sorted_codes(key * len(column.labels) + column.codes)
    gid = key
    first_row = np.empty(int(gid.max()) + 1, dtype=np.intp)
    first_row[gid] = np.arange(n)
    combos = np.stack([c.codes[first_row] for c in columns], axis=1)
    return gid, combos


def _scopes(columns: list[_Column], combos: np.ndarray) -> list[_Scope]:
    """One scope per sensitive column, plus their intersection when there are several."""
    scopes = []
    for j, column in enumerate(columns):
        # Every label of a column occurs in some combination, so codes are group indexes.
        labels = [{column.name: label} for label in column.labels]
        scopes.append(_Scope(column.name, [column.name], labels, combos[:, j]))
    if len(columns) > 1:
        names = [c.name for c in columns]
        labels = [
            {c.name: c.labels[code] for c, code in zip(columns, row, strict=True)} for row in combos
        ]
        scopes.append(_Scope(" & ".join(names), names, labels, np.arange(combos.shape[0])))
    return scopes


def _aggregate(stats: np.ndarray, member: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum finest-group statistics ``(..., n_finest, 4)`` into ``(..., n_groups, 4)``."""
    lead = stats.shape[:-2]
    flat = stats.reshape(-1, stats.shape[-2], stats.shape[-1])
    n_rep = flat.shape[0]
    index = (np.arange(n_rep)[:, None] * n_groups + member[None, :]).ravel()
    summed = [
        np.bincount(index, weights=flat[..., k].ravel(), minlength=n_rep * n_groups)
        for k in range(flat.shape[-1])
    ]
    return np.stack(summed, axis=-1).reshape(*lead, n_groups, flat.shape[-1])


def _cell_stats(
    task: Task, gid: np.ndarray, n_finest: int, yt: np.ndarray, yp: np.ndarray
) -> np.ndarray:
    """Sufficient statistics per finest group, shape ``(n_finest, 4)``.

    classification: counts of (y_true, y_pred) = (0,0), (0,1), (1,0), (1,1), i.e. TN FP FN TP.
    regression: count, sum of squared errors, sum of absolute errors, sum of predictions.
    """
    if task == "classification":
        cell = gid * 4 + yt.astype(np.intp) * 2 + yp.astype(np.intp)
        return np.bincount(cell, minlength=4 * n_finest).reshape(n_finest, 4).astype(np.float64)
    err = yp - yt
    return np.stack(
        [
            np.bincount(gid, minlength=n_finest).astype(np.float64),
            np.bincount(gid, weights=err * err, minlength=n_finest),
            np.bincount(gid, weights=np.abs(err), minlength=n_finest),
            np.bincount(gid, weights=yp, minlength=n_finest),
        ],
        axis=1,
    )


# --------------------------------------------------------------------------- metrics


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (undefined, never a made-up 0)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _group_metrics(task: Task, stats: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group metrics from sufficient statistics ``(..., n_groups, 4)``."""
    if task == "classification":
        tn, fp, fn, tp = (stats[..., k] for k in range(4))
        count = tn + fp + fn + tp
        return {
            "count": count,
            "selection_rate": _div(tp + fp, count),
            "accuracy": _div(tp + tn, count),
            "tpr": _div(tp, tp + fn),
            "fpr": _div(fp, fp + tn),
            "fnr": _div(fn, tp + fn),
            "precision": _div(tp, tp + fp),
        }
    count, sse, sae, spred = (stats[..., k] for k in range(4))
    return {
        "count": count,
        "rmse": np.sqrt(_div(sse, count)),
        "mae": _div(sae, count),
        "mean_prediction": _div(spred, count),
    }


def _roc_auc(gid: np.ndarray, n_groups: int, yt: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC per group via the Mann-Whitney U statistic (ties count one half).

    Equals ``sklearn.metrics.roc_auc_score`` on each group; NaN for single-class groups.
    """
    ranks = pd.Series(score).groupby(gid).rank(method="average").to_numpy()
    n_pos = np.bincount(gid, weights=yt, minlength=n_groups)
    n_neg = np.bincount(gid, minlength=n_groups) - n_pos
    rank_sum = np.bincount(gid, weights=ranks * yt, minlength=n_groups)
    return _div(rank_sum - n_pos * (n_pos + 1) / 2, n_pos * n_neg)


# --------------------------------------------------------------------------- disparities


def _n_defined(values: np.ndarray) -> np.ndarray:
    return np.count_nonzero(~np.isnan(values), axis=-1)


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max and min along the last axis ignoring NaN; NaN when fewer than two are defined.

    Mirrors the skipna min/max of pandas that ``MetricFrame.difference``/``ratio`` use.
    """
    ok = _n_defined(values) >= 2
    high = np.where(np.isnan(values), -np.inf, values).max(axis=-1, initial=-np.inf)
    low = np.where(np.isnan(values), np.inf, values).min(axis=-1, initial=np.inf)
    return np.where(ok, high, np.nan), np.where(ok, low, np.nan)


def _difference(values: np.ndarray) -> np.ndarray:
    high, low = _spread(values)
    return high - low


def _min_over_max(values: np.ndarray) -> np.ndarray:
    high, low = _spread(values)
    return _div(low, high)


def _max_over_min(values: np.ndarray) -> np.ndarray:
    """Worst over best error (>= 1): 1 when every group is at 0, +inf when only some are.

    +inf fails any ``*_ratio_max`` rule; the report shows it as ``None`` ("unbounded").
    """
    high, low = _spread(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = high / low
    return np.where((high == 0) & (low == 0), 1.0, ratio)


def _disparities(task: Task, stats: np.ndarray) -> dict[str, np.ndarray]:
    """Disparities over the groups in ``stats`` (``(..., n_groups, 4)``), vectorized."""
    m = _group_metrics(task, stats)
    if task == "regression":
        return {
            "rmse_ratio": _max_over_min(m["rmse"]),
            "rmse_difference": _difference(m["rmse"]),
            "mae_ratio": _max_over_min(m["mae"]),
            "mae_difference": _difference(m["mae"]),
        }
    tpr_diff, fpr_diff = _difference(m["tpr"]), _difference(m["fpr"])
    tpr_ratio, fpr_ratio = _min_over_max(m["tpr"]), _min_over_max(m["fpr"])
    both = (_n_defined(m["tpr"]) >= 2) & (_n_defined(m["fpr"]) >= 2)
    return {
        "demographic_parity_difference": _difference(m["selection_rate"]),
        "demographic_parity_ratio": _min_over_max(m["selection_rate"]),
        # np.maximum propagates NaN: worst case needs both components.
        "equalized_odds_difference": np.maximum(tpr_diff, fpr_diff),
        # 0/0 (every group at rate 0) is parity for FPR (no false positives anywhere) but
        # a degenerate model for TPR (no true positives anywhere): skip the former, keep
        # the latter undefined. This is also what fairlearn's min() over [tpr, fpr] gives.
        "equalized_odds_ratio": np.where(
            both, np.where(np.isnan(tpr_ratio), np.nan, np.fmin(tpr_ratio, fpr_ratio)), np.nan
        ),
        "equal_opportunity_difference": tpr_diff,
        "tpr_difference": tpr_diff,
        "fpr_difference": fpr_diff,
    }


def _why_undefined(task: Task, name: str, value: float, stats: np.ndarray) -> str:
    """Explain a NaN or infinite point-estimate disparity over the included groups ``stats``."""
    if np.isinf(value):
        return "unbounded: one included group has zero error while another does not"
    n_groups = stats.shape[0]
    if n_groups < 2:
        return f"fewer than two groups of at least min_group_size rows ({n_groups} included)"
    m = _group_metrics(task, stats)
    needs = {
        "equal_opportunity": ["tpr"],
        "tpr": ["tpr"],
        "fpr": ["fpr"],
        "equalized_odds": ["tpr", "fpr"],
    }
    for prefix, metrics in needs.items():
        if name.startswith(prefix):
            for metric in metrics:
                if _n_defined(m[metric]) < 2:
                    return (
                        f"{metric} is defined for fewer than two included groups "
                        f"({_UNDEFINED_REASONS[metric]} for the others)"
                    )
    base = {"demographic": "selection rate", "equalized": "TPR"}[name.split("_")[0]]
    return f"every included group has {base} 0, so min/max is 0/0"


# --------------------------------------------------------------------------- bootstrap


def _bootstrap_stats(
    task: Task,
    stats: np.ndarray,
    gid: np.ndarray,
    yt: np.ndarray,
    yp: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Resampled finest-group statistics, shape ``(n_boot, n_finest, 4)``.

    Classification metrics depend only on the cell counts, and resampling n rows with
    replacement is exactly a multinomial draw of n over the cells, so no row is touched.
    Regression needs the rows: one vectorized resample per replicate (O(n_boot * n)).
    """
    n_finest = stats.shape[0]
    n = int(stats[:, 0].sum()) if task == "regression" else int(stats.sum())
    if task == "classification":
        draws = rng.multinomial(n, stats.ravel() / n, size=n_boot)
        return draws.reshape(n_boot, n_finest, 4).astype(np.float64)
    out = np.empty((n_boot, n_finest, 4))
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        out[b] = _cell_stats(task, gid[idx], n_finest, yt[idx], yp[idx])
    return out


def _percentile_ci(samples: np.ndarray) -> dict[str, Any]:
    valid = samples[~np.isnan(samples)]
    tail = (1 - CONFIDENCE_LEVEL) / 2 * 100
    if valid.size == 0:
        return {"low": None, "high": None, "n_valid": 0}
    low, high = np.percentile(valid, [tail, 100 - tail])
    return {"low": _num(low), "high": _num(high), "n_valid": int(valid.size)}


# --------------------------------------------------------------------------- report


def _num(value: Any) -> float | None:
    """A JSON number: NaN (undefined) and infinity (unbounded) become None."""
    value = float(value)
    return value if np.isfinite(value) else None


def _thresholds(thresholds: Mapping[str, Any] | None) -> dict[str, float | None]:
    given = dict(thresholds or {})
    unknown = sorted(set(given) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise FairnessInputError(
            f"unknown threshold key(s) {unknown}; known: {sorted(DEFAULT_THRESHOLDS)}"
        )
    effective = {**DEFAULT_THRESHOLDS, **given}
    for key, value in effective.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise FairnessInputError(f"threshold {key!r} must be a finite number or None")
        effective[key] = float(value)
    return effective


def _group_rows(
    scope: _Scope,
    metrics: dict[str, np.ndarray],
    included: np.ndarray,
    min_group_size: int,
) -> list[dict[str, Any]]:
    rows = []
    for g, label in enumerate(scope.labels):
        values = {k: _num(v[g]) for k, v in metrics.items() if k != "count"}
        count = int(metrics["count"][g])
        rows.append(
            {
                "group": label,
                "count": count,
                "excluded": not included[g],
                "excluded_reason": None
                if included[g]
                else f"{count} rows < min_group_size {min_group_size}",
                "metrics": values,
                "undefined": {k: _UNDEFINED_REASONS[k] for k, v in values.items() if v is None},
            }
        )
    return rows


def _disparity_rows(
    task: Task, values: Mapping[str, np.ndarray], stats: np.ndarray, boot: np.ndarray | None
) -> dict[str, Any]:
    boot_values = _disparities(task, boot) if boot is not None else None
    out: dict[str, Any] = {}
    for name, array in values.items():
        value = float(array)
        v = _num(value)
        row: dict[str, Any] = {
            "value": v,
            "reason": None if v is not None else _why_undefined(task, name, value, stats),
        }
        if boot_values is not None:
            row["ci"] = _percentile_ci(boot_values[name])
        out[name] = row
    return out


def _evaluate(
    rule: _Rule, threshold: float, scope: str, value: float, reason: str | None
) -> dict[str, Any]:
    """One rule on one scope. NaN is not computable (never passes); +inf fails."""
    result = {
        "rule": rule.key,
        "scope": scope,
        "disparity": rule.disparity,
        "value": _num(value),
        "threshold": threshold,
        "reason": reason,
    }
    if np.isnan(value):
        return {**result, "passed": False, "status": "not_computable"}
    passed = bool(value >= threshold if rule.bound == "min" else value <= threshold)
    return {**result, "passed": passed, "status": "passed" if passed else "failed"}


def _overall(task: Task, stats: np.ndarray, extra: Mapping[str, float | None]) -> dict[str, Any]:
    metrics = _group_metrics(task, stats.sum(axis=0, keepdims=True))
    values = {k: _num(v[0]) for k, v in metrics.items() if k != "count"} | dict(extra)
    return {
        "count": int(metrics["count"][0]),
        "metrics": values,
        "undefined": {
            k: _UNDEFINED_REASONS[k].replace("this group", "the data")
            for k, v in values.items()
            if v is None
        },
    }


def _check_options(task: str, min_group_size: Any, bootstrap: Any, random_state: Any) -> None:
    if task not in _RULES:
        raise FairnessInputError(f"task must be 'classification' or 'regression', got {task!r}")
    for name, value, low in (
        ("min_group_size", min_group_size, 1),
        ("bootstrap", bootstrap, 0),
        ("random_state", random_state, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise FairnessInputError(f"{name} must be an integer >= {low}, got {value!r}")


def _targets(task: Task, y_true: Any, y_pred: Any, pos_label: Any) -> tuple[np.ndarray, ...]:
    yt, yp = _to_1d("y_true", y_true), _to_1d("y_pred", y_pred)
    if yt.size != yp.size:
        raise FairnessInputError(f"y_true has {yt.size} rows but y_pred has {yp.size}")
    if yt.size == 0:
        raise FairnessInputError("cannot audit empty input")
    _refuse_missing("y_pred", yp)
    _refuse_missing("y_true", yt)
    if task == "classification":
        return _binarize(yt, yp, pos_label)
    return _as_float("y_true", yt), _as_float("y_pred", yp)


def _scores(task: Task, y_score: Any, n: int) -> np.ndarray | None:
    if y_score is None:
        return None
    if task != "classification":
        raise FairnessInputError("y_score is only used by classification audits")
    score = _to_1d("y_score", y_score)
    if score.size != n:
        raise FairnessInputError(f"y_score has {score.size} rows, y_true has {n}")
    _refuse_missing("y_score", score)
    return _as_float("y_score", score)


def audit(
    y_true: Any,
    y_pred: Any,
    sensitive_features: Any,
    *,
    task: Task,
    thresholds: Mapping[str, float | None] | None,
    min_group_size: int,
    y_score: Any = None,
    bootstrap: int = 0,
    random_state: int = 0,
    pos_label: Any = 1,
) -> dict[str, Any]:
    """Audit predictions for group fairness; returns plain JSON-serializable data.

    Groups are formed by each sensitive column and, with several columns, by their
    intersection. Groups with fewer than ``min_group_size`` rows are reported with
    ``excluded: true`` and left out of the disparities that feed the rules. The audit
    passes when every enabled rule passes; a rule that cannot be computed does not pass.

    ``task="classification"`` is binary: a row is positive when its label equals
    ``pos_label`` (default 1), for ``y_true`` and ``y_pred`` alike; ``y_score`` (optional,
    higher means more positive) adds a per-group ROC AUC. ``bootstrap=n`` adds 95%
    percentile intervals to every disparity, seeded with ``random_state``.

    Raises:
        FairnessInputError: missing predictions or labels, mismatched lengths, empty
            input, non-binary labels, unknown threshold keys.
    """
    _check_options(task, min_group_size, bootstrap, random_state)
    effective = _thresholds(thresholds)
    enabled = [(r, t) for r in _RULES[task] if (t := effective[r.key]) is not None]
    if not enabled:
        raise FairnessInputError(f"every {task} threshold is None: no rule to evaluate")
    yt, yp = _targets(task, y_true, y_pred, pos_label)
    n = yt.size
    score = _scores(task, y_score, n)
    columns = _encode_sensitive(sensitive_features, n)

    gid, combos = _cells(columns, n)
    stats = _cell_stats(task, gid, combos.shape[0], yt, yp)
    boot = None
    if bootstrap:
        rng = np.random.default_rng(random_state)
        boot = _bootstrap_stats(task, stats, gid, yt, yp, bootstrap, rng)

    scopes_out, rules_out = [], []
    for scope in _scopes(columns, combos):
        scope_out, raw = _audit_scope(task, scope, gid, stats, boot, yt, score, min_group_size)
        scopes_out.append(scope_out)
        for rule, threshold in enabled:
            reason = scope_out["disparities"][rule.disparity]["reason"]
            value = float(raw[rule.disparity])
            rules_out.append(_evaluate(rule, threshold, scope.name, value, reason))

    extra = {}
    if score is not None:
        extra["roc_auc"] = _num(_roc_auc(np.zeros(n, np.intp), 1, yt, score)[0])
    return {
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "pos_label": _json_label(pos_label) if task == "classification" else None,
        "n_samples": int(n),
        "min_group_size": int(min_group_size),
        "sensitive_features": [c.name for c in columns],
        "thresholds": effective,
        "overall": _overall(task, stats, extra),
        "scopes": scopes_out,
        "rules": rules_out,
        **_verdict(rules_out),
        "bootstrap": _bootstrap_info(bootstrap, random_state),
    }


def _verdict(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall status: any failure fails; otherwise any not-computable rule blocks a pass."""
    summary = {
        k: sum(r["status"] == k for r in rules) for k in ("passed", "failed", "not_computable")
    }
    status = (
        "failed"
        if summary["failed"]
        else "not_computable"
        if summary["not_computable"]
        else "passed"
    )
    return {"passed": status == "passed", "status": status, "summary": summary}


def _bootstrap_info(bootstrap: int, random_state: int) -> dict[str, Any] | None:
    if not bootstrap:
        return None
    return {
        "n_resamples": int(bootstrap),
        "random_state": int(random_state),
        "confidence_level": CONFIDENCE_LEVEL,
        "method": "percentile",
    }


def _audit_scope(
    task: Task,
    scope: _Scope,
    gid: np.ndarray,
    stats: np.ndarray,
    boot: np.ndarray | None,
    yt: np.ndarray,
    score: np.ndarray | None,
    min_group_size: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The report of one scope, and its raw disparities (NaN/inf kept) for the rules."""
    n_groups = len(scope.labels)
    scope_stats = _aggregate(stats, scope.member, n_groups)
    metrics = _group_metrics(task, scope_stats)
    if score is not None:
        metrics["roc_auc"] = _roc_auc(scope.member[gid], n_groups, yt, score)
    included = metrics["count"] >= min_group_size
    raw = _disparities(task, scope_stats[included])
    boot_kept = None if boot is None else _aggregate(boot, scope.member, n_groups)[:, included]
    report = {
        "name": scope.name,
        "features": scope.features,
        "n_groups": n_groups,
        "n_included": int(included.sum()),
        "groups": _group_rows(scope, metrics, included, min_group_size),
        "disparities": _disparity_rows(task, raw, scope_stats[included], boot_kept),
    }
    return report, raw


# --------------------------------------------------------------------------- mitigation


def fill_missing_groups(sensitive_features: Any) -> pd.DataFrame:
    """Sensitive features as a DataFrame with missing values replaced by ``MISSING_GROUP``.

    fairlearn refuses missing sensitive values; the audit turns them into their own group.
    Use this on the sensitive features given to a mitigator, at fit and at predict time.
    """
    frame = pd.DataFrame(
        {
            name: values.reset_index(drop=True).astype(object)
            for name, values in _named_columns(sensitive_features)
        }
    )
    return frame.where(frame.notna(), MISSING_GROUP)


def _seeded(estimator: Any, random_state: int) -> Any:
    from sklearn.base import clone

    est = clone(estimator)
    if "random_state" in est.get_params(deep=False):
        est.set_params(random_state=random_state)
    return est


def mitigate(
    estimator: Any,
    X: Any,
    y: Any,
    sensitive_features: Any,
    *,
    method: Literal["threshold_optimizer", "exponentiated_gradient"] = "threshold_optimizer",
    constraint: Literal["demographic_parity", "equalized_odds"] = "demographic_parity",
    random_state: int = 0,
    pos_label: Any = 1,
) -> Any:
    """Fit a fairlearn mitigator around a clone of ``estimator``; returns it fitted.

    fairlearn takes labels 0 and 1 only: the mitigator is fitted on ``y == pos_label``
    (the audit's positive class), so it predicts 1 for ``pos_label`` and 0 otherwise.
    ``random_state`` seeds the cloned estimator (when it has that parameter). Both
    mitigators randomize at predict time: pass ``random_state=`` to their ``predict``.
    Missing sensitive values become ``MISSING_GROUP`` (see :func:`fill_missing_groups`).
    """
    if constraint not in ("demographic_parity", "equalized_odds"):
        raise FairnessInputError(f"unknown constraint {constraint!r}")
    factories: dict[str, Callable[[Any, str], Any]] = {
        "threshold_optimizer": _threshold_optimizer,
        "exponentiated_gradient": _exponentiated_gradient,
    }
    if method not in factories:
        raise FairnessInputError(f"unknown mitigation method {method!r}")
    mitigator = factories[method](_seeded(estimator, random_state), constraint)
    positive = (_to_1d("y", y) == pos_label).astype(np.int64)
    return mitigator.fit(X, positive, sensitive_features=fill_missing_groups(sensitive_features))


def _threshold_optimizer(estimator: Any, constraint: str) -> Any:
    from fairlearn.postprocessing import ThresholdOptimizer

    return ThresholdOptimizer(estimator=estimator, constraints=constraint, predict_method="auto")


def _exponentiated_gradient(estimator: Any, constraint: str) -> Any:
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

    moment = DemographicParity() if constraint == "demographic_parity" else EqualizedOdds()
    return ExponentiatedGradient(estimator, constraints=moment)


def skops_exportable(mitigator: Any) -> Any:
    """The part of a fitted mitigator that skops can store, with identical predictions.

    A fitted ``ThresholdOptimizer`` keeps its trade-off curves as pandas DataFrames (for
    plotting), which skops 0.16 cannot serialize; its ``interpolated_thresholder_`` holds
    everything ``predict(X, sensitive_features=..., random_state=...)`` needs and
    serializes (trusted types: fairlearn's ``InterpolatedThresholder`` and
    ``ThresholdOperation``, ``sklearn.utils._bunch.Bunch``, plus the estimator's).
    ``ExponentiatedGradient`` keeps pandas Series and its training data throughout: no
    skops-safe form; store the base estimator and retrain, or choose threshold_optimizer.
    """
    thresholder = getattr(mitigator, "interpolated_thresholder_", None)
    if thresholder is None:
        raise TypeError(
            f"{type(mitigator).__name__} cannot be stored as a skops file; only a fitted "
            "ThresholdOptimizer has a skops-safe part (interpolated_thresholder_)"
        )
    return thresholder
