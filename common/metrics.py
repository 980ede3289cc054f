"""The metric vocabulary, its computation and the positive class (pure: no Django).

Every app that scores a model uses this module: evaluations (``lifecycle``),
performance checks and A/B comparisons (``monitoring``) and fairness audits
(``governance``, for the positive class). It holds:

- the vocabulary: each metric's name (the names the approval policies' thresholds
  and the API use), its task, its direction and whether it needs scores;
- the computation, always scikit-learn's own functions;
- the one rule for the positive class of a binary classifier: ``classes[1]``, where
  ``classes`` is the version's own ``classes_`` as recorded in its signature at
  validation (scikit-learn's order: sorted labels). Precision, recall, F1, ROC AUC,
  log loss and Brier score are for that class, and so is every fairness rate;
- comparison helpers that know each metric's direction.

Never derive the positive class from the data (a sort of the labels seen): ``[2, 10]``
sorts to ``["10", "2"]`` as strings, and a window or a dataset may hold one class only.

See ``docs/metrics.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

CLASSIFICATION = "classification"
REGRESSION = "regression"


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    higher_is_better: bool
    needs_scores: bool = False
    """Needs the model's scores (``predict_proba``), not only its predictions."""
    binary_only: bool = False
    """Only defined for a binary classifier (``None`` otherwise)."""
    relative: bool = False
    """Changes are compared relative to the baseline (error metrics in the target's units)."""
    description: str = ""


_VOCABULARY = (
    Metric("accuracy", CLASSIFICATION, True, description="share of correct predictions"),
    Metric(
        "precision",
        CLASSIFICATION,
        True,
        description="of the positive class (binary); macro average (multiclass)",
    ),
    Metric(
        "recall",
        CLASSIFICATION,
        True,
        description="of the positive class (binary); macro average (multiclass)",
    ),
    Metric(
        "f1", CLASSIFICATION, True, description="of the positive class (binary); macro (multiclass)"
    ),
    Metric(
        "roc_auc",
        CLASSIFICATION,
        True,
        needs_scores=True,
        description="positive-class score (binary); one-vs-rest macro (multiclass)",
    ),
    Metric(
        "log_loss",
        CLASSIFICATION,
        False,
        needs_scores=True,
        description="cross-entropy of the predicted probabilities",
    ),
    Metric(
        "brier",
        CLASSIFICATION,
        False,
        needs_scores=True,
        binary_only=True,
        description="mean squared error of the positive-class probability",
    ),
    Metric("rmse", REGRESSION, False, relative=True, description="root mean squared error"),
    Metric("mae", REGRESSION, False, relative=True, description="mean absolute error"),
    Metric("r2", REGRESSION, True, description="coefficient of determination (2+ rows)"),
)

METRICS: Mapping[str, Metric] = MappingProxyType({m.name: m for m in _VOCABULARY})
"""Every metric, in the order reports list them."""


class UnknownMetric(ValueError):
    """A name that is not in the vocabulary (or not for this task)."""


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownMetric(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None


def names(task: str) -> tuple[str, ...]:
    """The metrics of a task (``classification`` or ``regression``), in report order."""
    return tuple(m.name for m in _VOCABULARY if m.task == task)


# --------------------------------------------------------------------------- positive class


def positive_class(classes: Sequence[Any] | None) -> Any:
    """The positive class of a binary classifier: ``classes[1]``; ``None`` otherwise.

    ``classes`` is the version's own ``classes_`` (recorded in its signature), in the
    representation of the labels being scored. Multiclass, regression, unknown classes
    (``None`` or empty) and multi-output classifiers (a list of arrays) have none.
    """
    if classes is None or len(classes) != 2:
        return None
    if any(isinstance(c, (list, tuple, np.ndarray)) for c in classes):
        return None
    return classes[1]


# --------------------------------------------------------------------------- computation


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _positive_scores(scores: Any) -> np.ndarray:
    """The positive-class column of ``predict_proba`` output, or 1-D scores as they are."""
    array = np.asarray(scores, dtype=np.float64)
    return array[:, 1] if array.ndim == 2 else array


def compute(
    name: str,
    y_true: Any,
    y_pred: Any,
    *,
    classes: Sequence[Any] | None = None,
    scores: Any = None,
) -> float | None:
    """One metric, by scikit-learn; ``None`` where it is undefined or not applicable.

    Classification: ``classes`` are the version's classes in the labels'
    representation. With two classes, precision, recall, F1, ROC AUC, log loss and
    Brier score are for ``positive_class(classes)`` and equal scikit-learn's with
    ``pos_label=classes[1]`` (rows are scored as "is the positive class or not", so a
    label outside ``classes`` counts as negative rather than failing). With more
    classes: macro averages over the labels present, ROC AUC one-vs-rest. Without
    ``classes`` only accuracy is computed: the labels seen never stand in for them.
    ``scores`` is ``predict_proba`` output (columns in ``classes`` order) or, for a
    binary classifier, the positive-class score alone; metrics that need scores are
    ``None`` without them. Undefined values (a 0/0 precision, ROC AUC with one class
    present, R² on one row) are ``None``, never a made-up 0.
    """
    metric = get(name)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0 or (metric.needs_scores and scores is None):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined values are reported as None instead
        if metric.task == REGRESSION:
            return _regression(name, y_true, y_pred)
        return _classification(metric, y_true, y_pred, classes, scores)


def _regression(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    from sklearn import metrics as skm

    if name == "rmse":
        return _finite(skm.root_mean_squared_error(y_true, y_pred))
    if name == "mae":
        return _finite(skm.mean_absolute_error(y_true, y_pred))
    return _finite(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None


def _classification(
    metric: Metric,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    classes: Sequence[Any] | None,
    scores: Any,
) -> float | None:
    from sklearn import metrics as skm

    name = metric.name
    pos = positive_class(classes)
    if name == "accuracy":
        return _finite(skm.accuracy_score(y_true, y_pred))
    if classes is None or len(classes) == 0 or (pos is None and metric.binary_only):
        return None  # without the version's classes, binary or not is unknown: no guess
    if pos is not None:
        truth = y_true == pos
        if name in ("precision", "recall", "f1"):
            fn = getattr(skm, f"{name}_score")
            return _finite(fn(truth, y_pred == pos, pos_label=True, zero_division=np.nan))
        score = _positive_scores(scores)
        if name == "roc_auc":
            if not 0 < truth.sum() < len(truth):
                return None  # one class present: undefined
            return _finite(skm.roc_auc_score(truth, score))
        if name == "log_loss":
            return _finite(skm.log_loss(truth, score, labels=[False, True]))
        return _finite(skm.brier_score_loss(truth, score, pos_label=True))
    if name in ("precision", "recall", "f1"):
        fn = getattr(skm, f"{name}_score")
        return _finite(fn(y_true, y_pred, average="macro", zero_division=np.nan))
    proba = np.asarray(scores, dtype=np.float64)
    if proba.ndim != 2:
        return None  # one-vs-rest needs every class's probability
    try:
        if name == "roc_auc":
            if len(np.unique(y_true)) < 2:
                return None
            return _finite(
                skm.roc_auc_score(
                    y_true, proba, multi_class="ovr", average="macro", labels=list(classes)
                )
            )
        return _finite(skm.log_loss(y_true, proba, labels=list(classes)))
    except ValueError:  # labels outside the classes, a class absent from y_true, ...
        return None


def compute_all(
    task: str,
    y_true: Any,
    y_pred: Any,
    *,
    classes: Sequence[Any] | None = None,
    scores: Any = None,
) -> dict[str, float | None]:
    """Every metric of ``task`` (see :func:`compute`), in report order."""
    return {
        name: compute(name, y_true, y_pred, classes=classes, scores=scores) for name in names(task)
    }


# --------------------------------------------------------------------------- comparison


def improvement(name: str, baseline: float, value: float) -> float:
    """How much better ``value`` is than ``baseline`` (negative: worse).

    An absolute difference, signed by the metric's direction; for ``relative`` metrics
    (RMSE, MAE: their scale is the target's) a share of the baseline, and from a zero
    baseline any error is infinitely worse.
    """
    metric = get(name)
    delta = value - baseline if metric.higher_is_better else baseline - value
    if not metric.relative:
        return delta
    if baseline:
        return delta / abs(baseline)
    return -math.inf if delta < 0 else (math.inf if delta > 0 else 0.0)


def is_better(name: str, a: float, b: float, *, tolerance: float = 0.0) -> bool:
    """Whether ``a`` beats ``b`` on ``name`` by more than ``tolerance`` (an
    :func:`improvement`: absolute, or relative for RMSE and MAE)."""
    return improvement(name, b, a) > tolerance


def better(name: str, value: float, baseline: float) -> bool | None:
    """``True`` if ``value`` is better than ``baseline``, ``False`` if worse, ``None`` if equal."""
    change = improvement(name, baseline, value)
    return None if change == 0 else change > 0
