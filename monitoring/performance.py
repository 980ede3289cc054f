"""Performance metrics over labelled rows and A/B comparison (pure: no Django).

The metrics, their direction and the positive class are ``common.metrics``'s (one
vocabulary for evaluations, monitors and fairness audits): scikit-learn's functions on
the joined rows, with the version's own recorded ``classes`` fixing the positive class.
The label join stores class labels as ingestion normalized them (booleans and integral
floats as integers, compared by their string form unless both columns are integers,
``monitoring.windows.labelled_rows``), so the classes are put in that same form first
(:func:`stored_classes`).

The A/B comparison of two versions uses, for rates (accuracy), the two-proportion
z-test with a pooled variance (equal to a 2x2 chi-square test without
continuity correction: z**2 == chi2) and a Wald interval for the difference;
for every other metric a seeded percentile bootstrap of the difference
(resampling each arm independently) with a two-sided bootstrap p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from common import metrics as mx

MIN_AB_ROWS = 100
"""Fewer labelled rows than this in either arm: no winner is called."""
BOOTSTRAP_SAMPLES = 1000


def stored_classes(classes: Sequence[Any] | None, frame: pd.DataFrame) -> list[Any] | None:
    """The version's classes in the form the label join gives ``frame``'s columns.

    Normalized as ingestion normalizes labels (booleans and integral floats become
    integers, ``monitoring.ingest`` and ``monitoring.outputs.class_labels``), then kept
    as integers when both the label and the prediction columns are integers, else in
    their string form (``True`` -> ``"1"``, ``10`` -> ``"10"``); in the same order, so
    ``classes[1]`` stays the positive class.
    """
    if not classes:
        return None
    integers = pd.api.types.is_integer_dtype(frame["label"]) and pd.api.types.is_integer_dtype(
        frame["prediction"]
    )
    return [_stored(c, integers=integers) for c in classes]


def _stored(value: Any, *, integers: bool) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or (isinstance(value, float) and value.is_integer()):
        value = int(value)
    return value if integers else str(value)


def metric_value(
    name: str, frame: pd.DataFrame, *, classes: Sequence[Any] | None = None
) -> float | None:
    """One metric on ``frame`` (columns label, prediction and optionally probability).

    ``classes``: the version's recorded classes (``ModelVersion.classes``). Scores are
    the positive-class probabilities the batches sent; rows of batches that sent none
    are left out of the metrics that need scores.
    """
    if len(frame) == 0:
        return None
    if mx.get(name).task == mx.REGRESSION:
        return mx.compute(name, frame["label"].to_numpy(), frame["prediction"].to_numpy())
    stored = stored_classes(classes, frame)
    scores = None
    if mx.get(name).needs_scores:
        if "probability" not in frame or mx.positive_class(stored) is None:
            return None
        scores = frame["probability"].to_numpy(dtype=np.float64, na_value=np.nan)
        scored = ~np.isnan(scores)
        if not scored.any():
            return None
        if not scored.all():
            frame, scores = frame[scored], scores[scored]
    return mx.compute(
        name,
        frame["label"].to_numpy(),
        frame["prediction"].to_numpy(),
        classes=stored,
        scores=scores,
    )


def metric_names(task: str) -> tuple[str, ...]:
    return mx.names(task)


def compute_metrics(
    task: str, frame: pd.DataFrame, *, classes: Sequence[Any] | None = None
) -> dict[str, float | None]:
    return {name: metric_value(name, frame, classes=classes) for name in metric_names(task)}


def metric_drop(name: str, baseline: float, value: float, *, relative: bool = False) -> float:
    """How much worse ``value`` is than ``baseline`` (positive = worse).

    ``-common.metrics.improvement``: an absolute drop, except for error metrics in the
    target's units (RMSE, MAE), whose increase is relative to the baseline. With
    ``relative``, every metric's drop is a share of the baseline (``0.62 -> 0.38`` is
    ``0.387``); from a zero baseline any drop is infinite.
    """
    drop = -mx.improvement(name, baseline, value)
    if not relative or mx.get(name).relative:
        return drop
    if baseline:
        return drop / abs(baseline)
    return math.inf if drop > 0 else (-math.inf if drop < 0 else 0.0)


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
    name: str,
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    classes_a: Sequence[Any] | None = None,
    classes_b: Sequence[Any] | None = None,
) -> dict[str, float | None]:
    rng = np.random.default_rng(seed)
    observed_a = metric_value(name, a, classes=classes_a)
    observed_b = metric_value(name, b, classes=classes_b)
    if observed_a is None or observed_b is None:
        return {"difference": None, "p_value": None, "ci_low": None, "ci_high": None}
    diffs = []
    for _ in range(samples):
        ra = a.iloc[rng.integers(0, len(a), len(a))]
        rb = b.iloc[rng.integers(0, len(b), len(b))]
        va = metric_value(name, ra, classes=classes_a)
        vb = metric_value(name, rb, classes=classes_b)
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
    name: str,
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    alpha: float = 0.05,
    min_rows: int = MIN_AB_ROWS,
    classes_a: Sequence[Any] | None = None,
    classes_b: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Compare ``b`` against ``a`` on one metric; a plain-language verdict.

    ``classes_a``/``classes_b``: each version's recorded classes (its positive class).
    """
    result: dict[str, Any] = {
        "metric": name,
        "n_a": len(a),
        "n_b": len(b),
        "value_a": metric_value(name, a, classes=classes_a) if len(a) else None,
        "value_b": metric_value(name, b, classes=classes_b) if len(b) else None,
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
        numbers = bootstrap_difference(name, a, b, classes_a=classes_a, classes_b=classes_b)
    result.update(test=test, **numbers)
    if numbers["p_value"] is None:
        result.update(significant=False, winner=None, verdict=f"{name} cannot be computed here.")
        return result
    significant = numbers["p_value"] < alpha
    better_b = (numbers["difference"] > 0) == mx.get(name).higher_is_better
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
