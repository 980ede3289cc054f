"""Performance metrics over labelled rows and A/B comparison (pure: no Django).

Metric values are scikit-learn's own functions on the joined rows. The A/B
comparison of two versions uses, for rates (accuracy), the two-proportion
z-test with a pooled variance (equal to a 2x2 chi-square test without
continuity correction: z**2 == chi2) and a Wald interval for the difference;
for every other metric a seeded percentile bootstrap of the difference
(resampling each arm independently) with a two-sided bootstrap p-value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"rmse", "mae"})
MIN_AB_ROWS = 100
"""Fewer labelled rows than this in either arm: no winner is called."""
BOOTSTRAP_SAMPLES = 1000


def _positive_label(y_true: np.ndarray, y_pred: np.ndarray) -> Any:
    labels = sorted(set(np.unique(y_true)) | set(np.unique(y_pred)), key=str)
    return 1 if 1 in labels else labels[-1]


def metric_value(name: str, frame: pd.DataFrame) -> float | None:
    """One metric on ``frame`` (columns label, prediction and optionally probability)."""
    y_true, y_pred = frame["label"].to_numpy(), frame["prediction"].to_numpy()
    if len(frame) == 0:
        return None
    if name == "accuracy":
        return float(skm.accuracy_score(y_true, y_pred))
    if name in ("precision", "recall", "f1"):
        labels = np.unique(np.concatenate([y_true, y_pred]))
        if len(labels) > 2:
            fn = getattr(skm, f"{name}_score")
            return float(fn(y_true, y_pred, average="macro", zero_division=0))
        pos = _positive_label(y_true, y_pred)
        fn = getattr(skm, f"{name}_score")
        return float(fn(y_true, y_pred, pos_label=pos, zero_division=0))
    if name == "roc_auc":
        if (
            "probability" not in frame
            or frame["probability"].isna().all()
            or len(np.unique(y_true)) != 2
        ):
            return None
        pos = _positive_label(y_true, y_pred)
        return float(skm.roc_auc_score(y_true == pos, frame["probability"].to_numpy()))
    if name == "rmse":
        return float(math.sqrt(skm.mean_squared_error(y_true, y_pred)))
    if name == "mae":
        return float(skm.mean_absolute_error(y_true, y_pred))
    if name == "r2":
        return float(skm.r2_score(y_true, y_pred)) if len(frame) > 1 else None
    raise ValueError(f"unknown metric {name!r}")


def metric_names(task: str) -> tuple[str, ...]:
    return REGRESSION_METRICS if task == "regression" else CLASSIFICATION_METRICS


def compute_metrics(task: str, frame: pd.DataFrame) -> dict[str, float | None]:
    return {name: metric_value(name, frame) for name in metric_names(task)}


def metric_drop(name: str, baseline: float, value: float) -> float:
    """How much worse ``value`` is than ``baseline`` (positive = worse).

    Higher-is-better metrics: absolute drop. Error metrics (RMSE, MAE): relative
    increase, since their scale is the target's.
    """
    if name in LOWER_IS_BETTER:
        return (value - baseline) / abs(baseline) if baseline else math.inf * (value > 0)
    return baseline - value


# --- A/B -------------------------------------------------------------------------------


def two_proportion_ztest(success_a: int, n_a: int, success_b: int, n_b: int) -> dict[str, float]:
    p_a, p_b = success_a / n_a, success_b / n_b
    pooled = (success_a + success_b) / (n_a + n_b)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = p_b - p_a
    z = diff / se_pooled if se_pooled > 0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z))) if se_pooled > 0 else 1.0
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half = stats.norm.ppf(0.975) * se
    return {
        "difference": diff,
        "z": z,
        "p_value": p_value,
        "ci_low": diff - half,
        "ci_high": diff + half,
    }


def bootstrap_difference(
    name: str, a: pd.DataFrame, b: pd.DataFrame, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> dict[str, float | None]:
    rng = np.random.default_rng(seed)
    observed_a, observed_b = metric_value(name, a), metric_value(name, b)
    if observed_a is None or observed_b is None:
        return {"difference": None, "p_value": None, "ci_low": None, "ci_high": None}
    diffs = []
    for _ in range(samples):
        ra = a.iloc[rng.integers(0, len(a), len(a))]
        rb = b.iloc[rng.integers(0, len(b), len(b))]
        va, vb = metric_value(name, ra), metric_value(name, rb)
        if va is not None and vb is not None:
            diffs.append(vb - va)
    arr = np.asarray(diffs)
    p_value = min(1.0, 2 * min((arr <= 0).mean(), (arr >= 0).mean())) if len(arr) else None
    return {
        "difference": observed_b - observed_a,
        "p_value": float(p_value) if p_value is not None else None,
        "ci_low": float(np.percentile(arr, 2.5)) if len(arr) else None,
        "ci_high": float(np.percentile(arr, 97.5)) if len(arr) else None,
    }


def ab_compare(
    name: str, a: pd.DataFrame, b: pd.DataFrame, *, alpha: float = 0.05, min_rows: int = MIN_AB_ROWS
) -> dict[str, Any]:
    """Compare ``b`` against ``a`` on one metric; a plain-language verdict."""
    result: dict[str, Any] = {
        "metric": name,
        "n_a": len(a),
        "n_b": len(b),
        "value_a": metric_value(name, a) if len(a) else None,
        "value_b": metric_value(name, b) if len(b) else None,
        "alpha": alpha,
        "min_rows": min_rows,
    }
    if len(a) < min_rows or len(b) < min_rows:
        result.update(
            test=None,
            difference=None,
            p_value=None,
            ci_low=None,
            ci_high=None,
            significant=False,
            winner=None,
            verdict=(
                f"Not enough labelled data to call a winner: {len(a)} and {len(b)} rows, "
                f"at least {min_rows} per version are needed."
            ),
        )
        return result
    if name == "accuracy":
        hits_a = int((a["label"].to_numpy() == a["prediction"].to_numpy()).sum())
        hits_b = int((b["label"].to_numpy() == b["prediction"].to_numpy()).sum())
        test = "two_proportion_z"
        numbers = two_proportion_ztest(hits_a, len(a), hits_b, len(b))
    else:
        test = "bootstrap"
        numbers = bootstrap_difference(name, a, b)
    result.update(test=test, **numbers)
    if numbers["p_value"] is None:
        result.update(significant=False, winner=None, verdict=f"{name} cannot be computed here.")
        return result
    significant = numbers["p_value"] < alpha
    better_b = (numbers["difference"] > 0) != (name in LOWER_IS_BETTER)
    winner = ("b" if better_b else "a") if significant else None
    if significant:
        verdict = (
            f"{'B' if better_b else 'A'} is better on {name} "
            f"(difference {numbers['difference']:+.4f}, p = {numbers['p_value']:.3g})."
        )
    else:
        verdict = (
            f"No significant difference in {name} "
            f"(difference {numbers['difference']:+.4f}, p = {numbers['p_value']:.3g})."
        )
    result.update(significant=significant, winner=winner, verdict=verdict)
    return result
