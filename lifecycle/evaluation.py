"""Evaluation reports and permutation importance (pure: no Django).

Every number is computed by scikit-learn itself (``sklearn.metrics``,
``sklearn.calibration``, ``sklearn.inspection``): this module only decides
which metrics a report holds and turns them into plain JSON.

Conventions:
- binary classification: the positive class is ``classes_[1]`` (scikit-learn's
  order: sorted labels); precision/recall/F1 are for that class, ROC AUC and
  log loss use ``predict_proba[:, 1]``;
- multiclass: precision/recall/F1 are macro averages, ROC AUC is one-vs-rest
  macro, calibration is not reported;
- undefined values (ROC AUC with one class present, a 0/0 precision) are
  ``None`` with a note, never a silent 0.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

HIGHER_IS_BETTER = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "brier": False,
    "rmse": False,
    "mae": False,
    "r2": True,
}
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


def classification_report(estimator: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    from sklearn import metrics
    from sklearn.calibration import calibration_curve

    predictions = _predict(estimator, X)
    classes = list(getattr(estimator, "classes_", np.unique(np.concatenate([y, predictions]))))
    binary = len(classes) == 2
    notes: list[str] = []
    average = "binary" if binary else "macro"
    pos = classes[1] if binary else None
    kwargs: dict[str, Any] = {"average": average, "zero_division": np.nan}
    if binary:
        kwargs["pos_label"] = pos
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report: dict[str, Any] = {
            "accuracy": _number(metrics.accuracy_score(y, predictions)),
            "precision": _number(metrics.precision_score(y, predictions, **kwargs)),
            "recall": _number(metrics.recall_score(y, predictions, **kwargs)),
            "f1": _number(metrics.f1_score(y, predictions, **kwargs)),
        }
    proba = None
    if hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X))
    present = set(np.unique(y).tolist())
    if proba is None:
        notes.append("The model has no predict_proba: ROC AUC, log loss and calibration omitted.")
        report.update(roc_auc=None, log_loss=None)
    elif len(present) < 2:
        notes.append("Only one class is present in the data: ROC AUC is undefined.")
        report.update(roc_auc=None, log_loss=None)
    else:
        if binary:
            report["roc_auc"] = _number(metrics.roc_auc_score(y == pos, proba[:, 1]))
        else:
            report["roc_auc"] = _number(
                metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
            )
        report["log_loss"] = _number(metrics.log_loss(y, proba, labels=classes))
    matrix = metrics.confusion_matrix(y, predictions, labels=classes)
    result: dict[str, Any] = {
        "task": "classification",
        "rows": len(y),
        "classes": [_plain(c) for c in classes],
        "positive_class": _plain(pos) if binary else None,
        "metrics": report,
        "confusion_matrix": matrix.tolist(),
        "class_counts": {str(_plain(c)): int((y == c).sum()) for c in classes},
        "notes": notes,
    }
    if binary and proba is not None and len(present) == 2:
        truth = (y == pos).to_numpy()
        prob_true, prob_pred = calibration_curve(truth, proba[:, 1], n_bins=CALIBRATION_BINS)
        report["brier"] = _number(metrics.brier_score_loss(truth, proba[:, 1]))
        result["calibration"] = {
            "n_bins": CALIBRATION_BINS,
            "strategy": "uniform",
            "prob_pred": [float(v) for v in prob_pred],
            "prob_true": [float(v) for v in prob_true],
        }
    return result


def regression_report(estimator: Any, X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    from sklearn import metrics

    predictions = _predict(estimator, X).astype(float)
    residuals = np.asarray(y, dtype=float) - predictions
    return {
        "task": "regression",
        "rows": len(y),
        "metrics": {
            "rmse": _number(metrics.root_mean_squared_error(y, predictions)),
            "mae": _number(metrics.mean_absolute_error(y, predictions)),
            "r2": _number(metrics.r2_score(y, predictions)) if len(y) > 1 else None,
        },
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
    estimator: Any, frame: pd.DataFrame, *, features: list[str], target: str, task: str
) -> dict[str, Any]:
    """The evaluation report of one estimator on one dataset."""
    check_frame(frame, features, target)
    X, y = frame[features], frame[target]
    if task == "classification":
        return classification_report(estimator, X, y)
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
        delta = value - other
        higher = HIGHER_IS_BETTER.get(name, True)
        better = None if delta == 0 else (delta > 0) == higher
        rows[name] = {"value": value, "baseline": other, "delta": delta, "better": better}
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
