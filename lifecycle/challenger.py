"""Champion/challenger: is a retrained candidate worse than the champion? (pure: no Django)

Both models are scored on the same hold-out rows with the policy's primary
metric. The challenger is ``rejected_by_champion`` when it is worse than the
champion by more than the policy's tolerance (an absolute amount in the
metric's own units, in the metric's "worse" direction); within the tolerance,
or better, it is ``accepted``. A metric that cannot be computed for either
model (ROC AUC on rows of one class, a model without ``predict_proba``) makes
the comparison ``not_comparable``, which is never an acceptance. With no
champion there is nothing to beat: ``accepted``, and the record says so.

The metric vocabulary is reached through :func:`metric` only: a metric name →
(compute(estimator, X, y) → value or None, higher_is_better). It is a small
table here; ``common.metrics`` (the project-wide vocabulary) can replace it by
changing that one function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ACCEPTED = "accepted"
REJECTED = "rejected_by_champion"
NOT_COMPARABLE = "not_comparable"

MetricFn = Callable[[Any, Any, Any], float | None]
"""compute(estimator, X, y) → the metric's value, or None when it is undefined."""


class ChallengerError(ValueError):
    """A comparison asked with a bad metric or tolerance; says which."""


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _positive(estimator: Any) -> Any:
    """The positive class of a binary classifier: ``classes_[1]`` (scikit-learn's order)."""
    return np.asarray(estimator.classes_)[1]


def _binary(estimator: Any) -> bool:
    return len(getattr(estimator, "classes_", ())) == 2


def _label_metric(name: str) -> MetricFn:
    def compute(estimator: Any, X: Any, y: Any) -> float | None:
        from sklearn import metrics

        score = getattr(metrics, f"{name}_score")
        kwargs: dict[str, Any] = {"zero_division": np.nan}
        if _binary(estimator):
            kwargs.update(average="binary", pos_label=_positive(estimator))
        else:
            kwargs.update(average="macro")
        return _finite(score(y, estimator.predict(X), **kwargs))

    return compute


def _accuracy(estimator: Any, X: Any, y: Any) -> float | None:
    from sklearn import metrics

    return _finite(metrics.accuracy_score(y, estimator.predict(X)))


def _roc_auc(estimator: Any, X: Any, y: Any) -> float | None:
    from sklearn import metrics

    if not hasattr(estimator, "predict_proba") or len(np.unique(np.asarray(y))) < 2:
        return None
    proba = np.asarray(estimator.predict_proba(X))
    if _binary(estimator):
        return _finite(metrics.roc_auc_score(np.asarray(y) == _positive(estimator), proba[:, 1]))
    return _finite(
        metrics.roc_auc_score(
            y, proba, multi_class="ovr", average="macro", labels=estimator.classes_
        )
    )


def _log_loss(estimator: Any, X: Any, y: Any) -> float | None:
    from sklearn import metrics

    if not hasattr(estimator, "predict_proba"):
        return None
    return _finite(metrics.log_loss(y, estimator.predict_proba(X), labels=estimator.classes_))


def _regression(name: str) -> MetricFn:
    def compute(estimator: Any, X: Any, y: Any) -> float | None:
        from sklearn import metrics

        fn = {
            "rmse": metrics.root_mean_squared_error,
            "mae": metrics.mean_absolute_error,
            "r2": metrics.r2_score,
        }[name]
        if name == "r2" and len(y) < 2:
            return None
        return _finite(fn(y, estimator.predict(X)))

    return compute


_METRICS: dict[str, tuple[MetricFn, bool]] = {
    "accuracy": (_accuracy, True),
    "precision": (_label_metric("precision"), True),
    "recall": (_label_metric("recall"), True),
    "f1": (_label_metric("f1"), True),
    "roc_auc": (_roc_auc, True),
    "log_loss": (_log_loss, False),
    "rmse": (_regression("rmse"), False),
    "mae": (_regression("mae"), False),
    "r2": (_regression("r2"), True),
}


def metric(name: str) -> tuple[MetricFn, bool]:
    """name → (compute(estimator, X, y), higher_is_better).

    The one place that knows where metrics come from: point it at
    ``common.metrics`` when that module lands.
    """
    if name not in _METRICS:
        raise ChallengerError(f"Unknown metric {name!r}; the metrics are {', '.join(_METRICS)}.")
    return _METRICS[name]


def worse_by(champion: float, challenger: float, *, higher_is_better: bool) -> float:
    """How much worse the challenger is (negative when it is better), in metric units."""
    return champion - challenger if higher_is_better else challenger - champion


def judge(
    champion: float | None,
    challenger: float | None,
    *,
    higher_is_better: bool,
    tolerance: float,
) -> str:
    """The verdict on two values (see the module docstring)."""
    if champion is None or challenger is None:
        return NOT_COMPARABLE
    gap = worse_by(champion, challenger, higher_is_better=higher_is_better)
    # "More than the tolerance": a gap equal to it, up to float rounding, passes.
    if gap > tolerance and not math.isclose(gap, tolerance, rel_tol=1e-9, abs_tol=1e-12):
        return REJECTED
    return ACCEPTED


@dataclass(frozen=True)
class Comparison:
    metric: str
    higher_is_better: bool
    tolerance: float
    rows: int
    champion: float | None
    challenger: float | None
    worse_by: float | None
    verdict: str
    reason: str

    @property
    def rejected(self) -> bool:
        return self.verdict == REJECTED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"


def compare(
    *,
    challenger: Any,
    champion: Any | None,
    X: Any,
    y: Any,
    metric_name: str,
    tolerance: float,
) -> Comparison:
    """Score both models on the same rows and judge the challenger (figures included)."""
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise ChallengerError(f"The tolerance must be a number ≥ 0, not {tolerance!r}.")
    compute, higher = metric(metric_name)
    rows = len(y)
    if rows == 0:
        raise ChallengerError("There are no rows to compare the models on.")
    challenger_value = compute(challenger, X, y)
    direction = "higher" if higher else "lower"
    if champion is None:
        return Comparison(
            metric=metric_name,
            higher_is_better=higher,
            tolerance=float(tolerance),
            rows=rows,
            champion=None,
            challenger=challenger_value,
            worse_by=None,
            verdict=ACCEPTED,
            reason=f"No champion to compare with; the challenger's {metric_name} is "
            f"{_fmt(challenger_value)} on {rows} rows.",
        )
    champion_value = compute(champion, X, y)
    verdict = judge(champion_value, challenger_value, higher_is_better=higher, tolerance=tolerance)
    gap = None
    if champion_value is not None and challenger_value is not None:
        gap = worse_by(champion_value, challenger_value, higher_is_better=higher)
    figures = (
        f"{metric_name} ({direction} is better) on {rows} rows: challenger "
        f"{_fmt(challenger_value)}, champion {_fmt(champion_value)}"
    )
    if verdict == NOT_COMPARABLE:
        reason = f"Cannot compare: {figures}."
    elif verdict == REJECTED:
        reason = f"The champion wins: {figures}; worse by {gap:.4f} > tolerance {tolerance:g}."
    else:
        reason = f"The challenger holds: {figures}; tolerance {tolerance:g}."
    return Comparison(
        metric=metric_name,
        higher_is_better=higher,
        tolerance=float(tolerance),
        rows=rows,
        champion=champion_value,
        challenger=challenger_value,
        worse_by=gap,
        verdict=verdict,
        reason=reason,
    )
