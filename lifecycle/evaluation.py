"""Evaluation reports and permutation importance (pure: no Django).

Every number is computed by scikit-learn itself (``common.metrics``,
``sklearn.calibration``, ``sklearn.inspection``): this module only decides
which metrics a report holds and turns them into plain JSON.

Conventions (``common.metrics``, see docs/metrics.md):
- binary classification: the positive class is ``classes[1]`` of the version's
  own ``classes_`` (recorded in its signature; the estimator's when the caller has
  no record); precision/recall/F1 are for that class, ROC AUC, log loss and Brier
  score use its ``predict_proba`` column;
- multiclass: precision/recall/F1 are macro averages, ROC AUC is one-vs-rest
  macro, calibration is not reported;
- undefined values (ROC AUC with one class present, a 0/0 precision) are
  ``None`` with a note, never a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from common import metrics as mx

CALIBRATION_BINS = 10


class EvaluationInputError(ValueError):
    """The data cannot be evaluated (missing columns, NaN, wrong target); says why."""


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def check_frame(frame: pd.DataFrame, features: list[str], target: str) -> None:
    missing = [c for c in [*features, target] if c not in frame.columns]
    if missing:
        raise EvaluationInputError(f"The dataset has no column(s) {missing}.")
    if len(frame) == 0:
        raise EvaluationInputError("The dataset has no rows.")
    nan_target = int(frame[target].isna().sum())
    if nan_target:
        raise EvaluationInputError(f"The target column {target!r} has {nan_target} missing values.")


def _predict(estimator: Any, X: pd.DataFrame) -> np.ndarray:
    try:
        predictions = np.asarray(estimator.predict(X))
    except Exception as exc:
        raise EvaluationInputError(f"The model fails to predict on this data: {exc}") from None
    if predictions.dtype.kind == "f" and not np.isfinite(predictions).all():
        bad = int((~np.isfinite(predictions)).sum())
        raise EvaluationInputError(f"The model produced {bad} non-finite predictions.")
    return predictions


def classification_report(
    estimator: Any, X: pd.DataFrame, y: pd.Series, *, classes: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The report of a classifier; ``classes`` are the version's (default: the estimator's)."""
    from sklearn import metrics
    from sklearn.calibration import calibration_curve

    predictions = _predict(estimator, X)
    if classes is None or not len(classes):
        classes = getattr(estimator, "classes_", None)
    if classes is None or not len(classes):
        raise EvaluationInputError("The classifier has no classes_: its positive class is unknown.")
    classes = [_plain(c) for c in classes]
    pos = mx.positive_class(classes)
    notes: list[str] = []
    proba = None
    if hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X))
    report = mx.compute_all(mx.CLASSIFICATION, y, predictions, classes=classes, scores=proba)
    present = set(np.unique(y).tolist())
    if proba is None:
        notes.append(
            "The model has no predict_proba: ROC AUC, log loss, Brier score and calibration "
            "omitted."
        )
    elif len(present) < 2:
        notes.append("Only one class is present in the data: ROC AUC is undefined.")
    matrix = metrics.confusion_matrix(y, predictions, labels=classes)
    result: dict[str, Any] = {
        "task": "classification",
        "rows": len(y),
        "classes": classes,
        "positive_class": pos,
        "metrics": report,
        "confusion_matrix": matrix.tolist(),
        "class_counts": {str(c): int((y == c).sum()) for c in classes},
        "notes": notes,
    }
    if pos is not None and proba is not None and len(present) == 2:
        truth = (y == pos).to_numpy()
        prob_true, prob_pred = calibration_curve(truth, proba[:, 1], n_bins=CALIBRATION_BINS)
        result["calibration"] = {
            "n_bins": CALIBRATION_BINS,
            "strategy": "uniform",
            "prob_pred": [float(v) for v in prob_pred],
            "prob_true": [float(v) for v in prob_true],
        }
    return result


def regression_report(estimator: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    predictions = _predict(estimator, X).astype(float)
    residuals = np.asarray(y, dtype=float) - predictions
    return {
        "task": "regression",
        "rows": len(y),
        "metrics": mx.compute_all(mx.REGRESSION, y, predictions),
        "residuals": {
            "mean": _number(residuals.mean()),
            "std": _number(residuals.std()),
            "quantiles": {
                str(q): _number(np.quantile(residuals, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)
            },
        },
        "notes": [],
    }


def evaluate(
    estimator: Any,
    frame: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    task: str,
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The evaluation report of one estimator on one dataset.

    ``classes``: the version's classes as recorded in its signature, which fix the
    positive class (``common.metrics.positive_class``); the estimator's ``classes_``
    when not given.
    """
    check_frame(frame, features, target)
    X, y = frame[features], frame[target]
    if task == "classification":
        return classification_report(estimator, X, y, classes=classes)
    return regression_report(estimator, X, y)


def permutation_importance_report(
    estimator: Any,
    frame: pd.DataFrame,
    *,
    features: list[str],
    target: str,
    task: str,
    n_repeats: int = 5,
    max_rows: int = 20_000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Permutation importance (scikit-learn's) on at most ``max_rows`` sampled rows.

    Scoring: accuracy for classification, negated RMSE for regression, so a
    positive importance always means "shuffling this feature makes it worse".
    """
    from sklearn.inspection import permutation_importance

    sample = frame if len(frame) <= max_rows else frame.sample(max_rows, random_state=random_state)
    scoring = "accuracy" if task == "classification" else "neg_root_mean_squared_error"
    result = permutation_importance(
        estimator,
        sample[features],
        sample[target],
        scoring=scoring,
        n_repeats=n_repeats,
        random_state=random_state,
    )
    order = np.argsort(-result.importances_mean)
    return {
        "scoring": scoring,
        "rows": len(sample),
        "n_repeats": n_repeats,
        "random_state": random_state,
        "features": [
            {
                "feature": features[i],
                "mean": float(result.importances_mean[i]),
                "std": float(result.importances_std[i]),
            }
            for i in order
        ],
    }


def compare_reports(report: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Per-metric difference against a baseline (the champion), with its direction."""
    rows = {}
    for name, value in report["metrics"].items():
        other = baseline["metrics"].get(name)
        if value is None or other is None:
            rows[name] = {"value": value, "baseline": other, "delta": None, "better": None}
            continue
        better = mx.better(name, value, other) if name in mx.METRICS else None
        rows[name] = {"value": value, "baseline": other, "delta": value - other, "better": better}
    return rows


def compare_importance(current: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Change in importance per feature between two reports (e.g. version vs parent)."""
    before = {row["feature"]: row["mean"] for row in baseline["features"]}
    return [
        {
            "feature": row["feature"],
            "mean": row["mean"],
            "baseline": before.get(row["feature"]),
            "delta": row["mean"] - before[row["feature"]] if row["feature"] in before else None,
        }
        for row in current["features"]
    ]


def judge_thresholds(metrics: dict[str, Any], thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """Failures of ``metrics`` against ``{"metric": {"min": x, "max": y}}``; [] means passed.

    A metric the policy bounds but the report could not compute (``None`` or
    absent, e.g. ROC AUC on one class) is a failure: the policy asked for it.
    """
    failures = []
    for name, bounds in sorted(thresholds.items()):
        value = metrics.get(name)
        low, high = bounds.get("min"), bounds.get("max")
        if value is None:
            failures.append({"metric": name, "value": None, "reason": "not computed"})
        elif low is not None and value < low:
            failures.append({"metric": name, "value": value, "reason": f"below the minimum {low}"})
        elif high is not None and value > high:
            failures.append({"metric": name, "value": value, "reason": f"above the maximum {high}"})
    return failures


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
