"""Champion/challenger: is a retrained candidate worse than the champion? (pure: no Django)

Both models are scored on the same hold-out rows with the policy's primary
metric. The challenger is ``rejected_by_champion`` when it is worse than the
champion by more than the policy's tolerance (an absolute amount in the
metric's own units, in the metric's "worse" direction); within the tolerance,
or better, it is ``accepted``. A metric that cannot be computed for either
model (ROC AUC on rows of one class, a model without ``predict_proba``) makes
the comparison ``not_comparable``, which is never an acceptance. With no
champion there is nothing to beat: ``accepted``, and the record says so.

The metric vocabulary is the project's one (``common.metrics``), reached
through :func:`metric`: a metric name → (compute(estimator, X, y) → value or
None, higher_is_better). The tolerance is absolute, in the metric's units.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from common import metrics

ACCEPTED = "accepted"
REJECTED = "rejected_by_champion"
NOT_COMPARABLE = "not_comparable"

MetricFn = Callable[[Any, Any, Any], float | None]
"""compute(estimator, X, y) → the metric's value, or None when it is undefined."""


class ChallengerError(ValueError):
    """A comparison asked with a bad metric or tolerance; says which."""


def metric(name: str) -> tuple[MetricFn, bool]:
    """name → (compute(estimator, X, y), higher_is_better), from ``common.metrics``.

    The project's one vocabulary computes the value (the positive class is the
    estimator's ``classes_[1]``); scores come from ``predict_proba`` when the
    metric needs them and the estimator has it, else the metric is undefined.
    """
    try:
        spec = metrics.get(name)
    except metrics.UnknownMetric:
        known = ", ".join(metrics.names(metrics.CLASSIFICATION) + metrics.names(metrics.REGRESSION))
        raise ChallengerError(f"Unknown metric {name!r}; the metrics are {known}.") from None

    def compute(estimator: Any, X: Any, y: Any) -> float | None:
        classes = getattr(estimator, "classes_", None)
        scores = None
        if spec.needs_scores and hasattr(estimator, "predict_proba"):
            scores = estimator.predict_proba(X)
        return metrics.compute(
            name,
            np.asarray(y),
            estimator.predict(X),
            classes=None if classes is None else list(classes),
            scores=scores,
        )

    return compute, spec.higher_is_better


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
