"""The rollout analysis: candidate against stable on the same interval (pure: no Django).

Each analysis compares two samples of served requests (what the stable and the
candidate versions answered over the same interval, or, for a replay, what
stable answered and what the candidate answers on the same rows) and judges
each check against the deployment's thresholds:

- ``error_rate``: the candidate's share of failed requests (5xx, or the model
  could not predict: ``prediction_failed``) minus the stable's; a refusal of
  bad input (4xx) is the caller's and counts for neither;
- ``latency_p99``: the candidate's 99th percentile latency against the
  stable's times ``latency_p99_ratio``, plus ``latency_p99_slack_ms``;
- ``prediction_psi``: the candidate's predictions (the positive-class
  probability when there is one, else the predicted class) against the
  stable's, judged by monitoring's drift maths and rule
  (``monitoring.drift.compare_series``): drifted when the difference is both
  significant (KS for probabilities, chi-square for classes, p below
  ``prediction_p_value``) and large (PSI at or above ``prediction_psi``);
- ``disagreement`` (replay and shadow: the same rows scored by both): the share
  of rows where the two predicted classes (or, for a regression, values more
  than ``disagreement_tolerance`` apart) differ;
- ``metric`` (once labels have joined the interval's requests): the task's
  first metric (``common.metrics``: accuracy, or RMSE for a regression) of
  each version on its own labelled requests; fails when the candidate is worse
  by more than ``metric_drop`` (``common.metrics.improvement``: absolute, or
  relative for RMSE). Fewer than ``min_labels`` labelled requests on a side:
  ``skipped`` (labels come late; the rollout does not wait for them).
- ``fairness`` (once labels have joined, for a binary classifier whose model has
  sensitive features that the requests carry): each version's gap between
  groups on its own labelled requests (live) or on the same rows (replay,
  shadow), by governance's fairness engine (``governance.fairness.audit``, the
  fairness audit's): the demographic parity and equalized odds differences, each
  the largest over every sensitive column and their intersection, among groups
  of at least ``fairness_min_group`` rows; fails when the candidate's gap exceeds
  the stable's by more than ``fairness_gap_increase`` and their 95 % bootstrap
  intervals (the audit's ``bootstrap``) do not overlap: on a canary's few labelled
  requests a gap is noisy, as PSI is. No sensitive features, a
  sensitive column the requests do not carry, fewer than ``min_labels`` labelled
  requests on a side, or no gap computable on both sides: ``skipped``.

A check returns ``pass``, ``fail``, ``inconclusive`` (too few requests to
judge: fewer than ``min_requests`` on either side) or ``skipped`` (nothing to
judge it on). The analysis as a whole fails when a check fails, is
inconclusive when none fails and one is inconclusive, and passes otherwise.
What a failure leads to (the failure limits, the inconclusive limit) is
decided by ``rollout_decision``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from common import metrics as common_metrics
from governance import fairness as fairness_engine
from monitoring import drift

PASS = "pass"  # noqa: S105 - a verdict, not a password
FAIL = "fail"
INCONCLUSIVE = "inconclusive"
SKIPPED = "skipped"

# Defaults (settings.ROLLOUT_THRESHOLDS overrides them; a deployment overrides those).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "error_rate": 0.02,
    "latency_p99_ratio": 2.0,
    "latency_p99_slack_ms": 25.0,
    "prediction_psi": 0.2,
    "prediction_p_value": 0.01,
    "disagreement": 0.2,
    "disagreement_tolerance": 1e-6,
    "min_requests": 30,
    "metric_drop": 0.05,
    "min_labels": 30,
    "fairness_gap_increase": 0.1,
    "fairness_min_group": 10,
}
# Failed analyses of a check that roll the deployment back (Argo's failureLimit).
DEFAULT_FAILURE_LIMITS: dict[str, int] = {
    "error_rate": 1,
    "latency_p99": 2,
    "prediction_psi": 2,
    "disagreement": 2,
    "metric": 2,
    "fairness": 2,
}
CHECKS = tuple(DEFAULT_FAILURE_LIMITS)


def thresholds_valid(given: Any, defaults: Mapping[str, float]) -> dict[str, float]:
    """``defaults`` with ``given`` on top; unknown names or bad numbers raise ValueError."""
    if given is None:
        return dict(defaults)
    if not isinstance(given, Mapping):
        raise ValueError("thresholds is an object of threshold name to number")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown threshold(s): {', '.join(map(str, unknown))}")
    merged = dict(defaults)
    for name, value in given.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"threshold {name} must be a finite number >= 0")
        merged[name] = float(value)
    return merged


@dataclass
class Sample:
    """What one version answered: one entry per logged row."""

    status: np.ndarray
    error_code: Sequence[str]
    latency_ms: np.ndarray
    prediction: Sequence[Any] = field(default_factory=list)  # successful rows only
    probability: np.ndarray | None = None  # successful rows only

    @classmethod
    def of(cls, rows: Mapping[str, Sequence[Any]]) -> Sample:
        status = np.asarray(rows.get("status", []), dtype=np.int64)
        ok = status == 200
        prediction = [p for p, good in zip(rows.get("prediction", []), ok, strict=False) if good]
        probability = None
        if rows.get("probability") is not None and len(rows["probability"]):
            values = np.asarray(
                [np.nan if p is None else p for p in rows["probability"]], dtype=np.float64
            )[ok[: len(rows["probability"])]]
            if values.size and np.isfinite(values).all():
                probability = values
        return cls(
            status=status,
            error_code=list(rows.get("error_code", [""] * len(status))),
            latency_ms=np.asarray(rows.get("latency_ms", []), dtype=np.float64),
            prediction=prediction,
            probability=probability,
        )

    @property
    def requests(self) -> int:
        return int(self.status.size)

    def errors(self) -> int:
        codes = np.asarray(self.error_code, dtype=object)
        failed = (self.status >= 500) | (codes == "prediction_failed")
        return int(failed.sum())

    def error_rate(self) -> float | None:
        return self.errors() / self.requests if self.requests else None

    def p99(self) -> float | None:
        return float(np.percentile(self.latency_ms, 99)) if self.latency_ms.size else None


def _check(verdict: str, **figures: Any) -> dict[str, Any]:
    return {"verdict": verdict, **figures}


def error_rate_check(stable: Sample, candidate: Sample, th: Mapping[str, float]) -> dict:
    cand, base = candidate.error_rate(), stable.error_rate()
    if cand is None or base is None:
        return _check(INCONCLUSIVE, reason="no requests")
    delta = cand - base
    verdict = FAIL if delta > th["error_rate"] else PASS
    return _check(
        verdict,
        candidate=cand,
        stable=base,
        delta=delta,
        limit=th["error_rate"],
        candidate_errors=candidate.errors(),
        stable_errors=stable.errors(),
    )


def latency_check(stable: Sample, candidate: Sample, th: Mapping[str, float]) -> dict:
    cand, base = candidate.p99(), stable.p99()
    if cand is None or base is None:
        return _check(INCONCLUSIVE, reason="no requests")
    limit = base * th["latency_p99_ratio"] + th["latency_p99_slack_ms"]
    return _check(FAIL if cand > limit else PASS, candidate=cand, stable=base, limit=limit)


def _predictions(sample: Sample) -> tuple[pd.Series, str]:
    if sample.probability is not None:
        return pd.Series(sample.probability, dtype="float64"), drift.NUMERIC
    return pd.Series(list(sample.prediction)), drift.CATEGORICAL


def prediction_drift_check(stable: Sample, candidate: Sample, th: Mapping[str, float]) -> dict:
    """PSI (and KS for numbers) of the candidate's predictions against the stable's."""
    if not len(stable.prediction) or not len(candidate.prediction):
        return _check(INCONCLUSIVE, reason="no successful predictions on one side")
    reference, kind = _predictions(stable)
    current, current_kind = _predictions(candidate)
    if current_kind != kind:  # one side without probabilities: compare the classes
        reference = pd.Series(list(stable.prediction))
        current = pd.Series(list(candidate.prediction))
        kind = drift.CATEGORICAL
    # Monitoring's rule for a drifted column: significant (p below ``prediction_p_value``,
    # KS for numbers, chi-square for classes) AND large (PSI at or above the limit). PSI
    # alone is noise at a canary's sample sizes: its expectation under no change is about
    # (bins - 1) * (1/n + 1/m), 0.34 for 40 against 80 requests on 10 bins.
    result = drift.compare_series(
        reference,
        current,
        kind=kind,
        thresholds=drift.Thresholds(p_value=th["prediction_p_value"], psi=th["prediction_psi"]),
        name="prediction",
    )
    if not result.computable or result.psi is None:
        # A constant prediction on both sides: nothing drifts if they agree.
        constant = reference.nunique() == 1 and set(map(str, reference)) == set(map(str, current))
        return _check(
            PASS if constant else INCONCLUSIVE,
            reason=result.reason or "not computable",
            psi=0.0 if constant else None,
            limit=th["prediction_psi"],
        )
    figures = {
        "psi": result.psi,
        "limit": th["prediction_psi"],
        "kind": kind,
        "p_value": result.p_value,
        "p_value_test": result.p_value_test,
        "p_value_limit": th["prediction_p_value"],
    }
    if result.ks_statistic is not None:
        figures.update(ks_statistic=result.ks_statistic, ks_p_value=result.ks_p_value)
    return _check(FAIL if result.drifted else PASS, **figures)


def disagreement_check(
    stable: Sequence[Any], candidate: Sequence[Any], th: Mapping[str, float], *, task: str
) -> dict:
    """The share of the same rows on which the two versions' predictions differ."""
    if len(stable) != len(candidate):
        raise ValueError("disagreement compares the same rows")
    if not len(stable):
        return _check(INCONCLUSIVE, reason="no rows scored by both")
    if task == "regression":
        a = np.asarray(stable, dtype=np.float64)
        b = np.asarray(candidate, dtype=np.float64)
        differ = np.abs(a - b) > th["disagreement_tolerance"]
    else:
        differ = np.asarray([str(x) != str(y) for x, y in zip(stable, candidate, strict=True)])
    rate = float(differ.mean())
    return _check(
        FAIL if rate > th["disagreement"] else PASS,
        rate=rate,
        rows=len(stable),
        limit=th["disagreement"],
    )


def metric_check(
    stable: tuple[Any, ...] | None,
    candidate: tuple[Any, ...] | None,
    th: Mapping[str, float],
    *,
    task: str,
    metric: str | None = None,
    classes: tuple[Sequence[Any] | None, Sequence[Any] | None] = (None, None),
) -> dict:
    """``metric`` (the retraining policy's primary metric when set, else the task's
    first) on each side's labelled requests: (labels, predictions[, positive-class
    scores]); ``classes``: each version's, for the metrics that need them."""
    name = metric if metric in common_metrics.names(task) else common_metrics.names(task)[0]
    minimum = int(th["min_labels"])
    counts = {
        "metric": name,
        "stable_labelled": len(stable[0]) if stable else 0,
        "candidate_labelled": len(candidate[0]) if candidate else 0,
    }
    if counts["stable_labelled"] < minimum or counts["candidate_labelled"] < minimum:
        return _check(SKIPPED, reason=f"fewer than {minimum} labelled requests", **counts)
    assert stable is not None and candidate is not None

    def scores(side: tuple[Any, ...]) -> Any:
        if len(side) < 3 or side[2] is None or any(v is None for v in side[2]):
            return None
        return side[2]

    base = common_metrics.compute(
        name, stable[0], stable[1], classes=classes[0], scores=scores(stable)
    )
    value = common_metrics.compute(
        name, candidate[0], candidate[1], classes=classes[1], scores=scores(candidate)
    )
    if base is None or value is None:
        return _check(SKIPPED, reason=f"{name} is undefined on these labels", **counts)
    drop = -common_metrics.improvement(name, base, value)
    return _check(
        FAIL if drop > th["metric_drop"] else PASS,
        candidate=value,
        stable=base,
        drop=drop,
        limit=th["metric_drop"],
        **counts,
    )


# The gaps the fairness check judges: governance's disparities (``fairness.audit``) that
# are differences of group rates, so that "more than ``fairness_gap_increase`` wider"
# means the same on each. Regression has no such unitless gap: not judged.
FAIRNESS_GAPS = ("demographic_parity_difference", "equalized_odds_difference")
# Per-group figures kept beside the gaps, and how many groups of a scope are kept.
_GROUP_FIGURES = ("selection_rate", "tpr", "fpr", "accuracy")
_MAX_GROUPS = 20
# Bootstrap resamples of each gap (the fairness audit's percentile intervals, seeded).
FAIRNESS_BOOTSTRAP = 200


@dataclass
class Labelled:
    """One version's labelled requests: labels, its predictions and, by column name, the
    request's values of the model's sensitive features that the requests carry."""

    labels: Sequence[Any]
    predictions: Sequence[Any]
    groups: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    scores: Sequence[Any] | None = None  # positive-class scores, for the metric check

    def metric_rows(self) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any] | None]:
        """What ``metric_check`` takes of one side."""
        return self.labels, self.predictions, self.scores


def _gaps(side: Labelled, sensitive: Sequence[str], positive: Any, min_group: int) -> dict:
    """One version's gaps (the largest over the scopes) and its groups, by the engine."""
    pos = str(positive)
    truth = np.asarray([str(v) == pos for v in side.labels], dtype=np.int64)
    predicted = np.asarray([str(v) == pos for v in side.predictions], dtype=np.int64)
    groups = pd.DataFrame({c: list(side.groups[c]) for c in sensitive})
    report = fairness_engine.audit(
        truth,
        predicted,
        groups,
        task="classification",
        thresholds=None,
        min_group_size=min_group,
        pos_label=1,
        bootstrap=FAIRNESS_BOOTSTRAP,
        random_state=0,
    )
    gaps: dict[str, Any] = {}
    for name in FAIRNESS_GAPS:
        best: dict[str, Any] | None = None
        for scope in report["scopes"]:
            disparity = scope["disparities"][name]
            if disparity["value"] is not None and (
                best is None or disparity["value"] > best["value"]
            ):
                ci = disparity.get("ci") or {}
                best = {
                    "value": disparity["value"],
                    "scope": scope["name"],
                    "ci": [ci.get("low"), ci.get("high")],
                }
        gaps[name] = best
    scopes = {
        scope["name"]: [
            {
                "group": ", ".join(f"{k}={v}" for k, v in g["group"].items()),
                "count": g["count"],
                "excluded": g["excluded"],
                **{k: g["metrics"].get(k) for k in _GROUP_FIGURES},
            }
            for g in sorted(scope["groups"], key=lambda g: -g["count"])[:_MAX_GROUPS]
        ]
        for scope in report["scopes"]
    }
    return {"gaps": gaps, "groups": scopes}


def fairness_check(
    stable: Labelled | None,
    candidate: Labelled | None,
    th: Mapping[str, float],
    *,
    task: str,
    sensitive: Sequence[str],
    positive: Any,
) -> dict:
    """Each version's gap between groups on its labelled requests (see the module's
    docstring); ``positive``: the positive class (``common.metrics.positive_class``)."""
    sensitive = list(dict.fromkeys(str(c) for c in sensitive))
    if not sensitive:
        return _check(SKIPPED, reason="the model has no sensitive features")
    if task != "classification" or positive is None:
        return _check(SKIPPED, reason="the fairness gap is judged for binary classifiers")
    minimum = int(th["min_labels"])
    counts = {
        "sensitive_features": sensitive,
        "stable_labelled": len(stable.labels) if stable else 0,
        "candidate_labelled": len(candidate.labels) if candidate else 0,
    }
    if counts["stable_labelled"] < minimum or counts["candidate_labelled"] < minimum:
        return _check(SKIPPED, reason=f"fewer than {minimum} labelled requests", **counts)
    assert stable is not None and candidate is not None
    missing = [c for c in sensitive if c not in stable.groups or c not in candidate.groups]
    if missing:
        return _check(
            SKIPPED,
            reason=f"the requests do not carry the sensitive feature(s) {', '.join(missing)}",
            **counts,
        )
    min_group = max(1, int(th["fairness_min_group"]))
    try:
        base = _gaps(stable, sensitive, positive, min_group)
        cand = _gaps(candidate, sensitive, positive, min_group)
    except fairness_engine.FairnessInputError as exc:
        return _check(SKIPPED, reason=f"not computable: {exc}", **counts)
    limit = th["fairness_gap_increase"]
    gaps, worst = {}, None
    for name in FAIRNESS_GAPS:
        a, b = base["gaps"][name], cand["gaps"][name]
        if a is None or b is None:
            gaps[name] = {"stable": a and a["value"], "candidate": b and b["value"]}
            continue
        increase = b["value"] - a["value"]
        low = b["ci"][0]
        gaps[name] = {
            "stable": a["value"],
            "candidate": b["value"],
            "increase": increase,
            "stable_scope": a["scope"],
            "candidate_scope": b["scope"],
            "stable_ci": a["ci"],
            "candidate_ci": b["ci"],
            # Wider by more than the limit, and not by chance: the two gaps' bootstrap
            # intervals do not overlap (small groups make gaps noisy, and a gap, never
            # below 0, is biased upwards on small samples).
            "failed": bool(
                increase > limit and low is not None and low > (a["ci"][1] or a["value"])
            ),
        }
        if worst is None or (gaps[name]["failed"], increase) > (
            gaps[worst]["failed"],
            gaps[worst]["increase"],
        ):
            worst = name
    figures = {
        **counts,
        "gaps": gaps,
        "groups": {"stable": base["groups"], "candidate": cand["groups"]},
        "min_group": min_group,
        "limit": limit,
    }
    if worst is None:
        return _check(
            SKIPPED,
            reason=f"no gap computable on both sides (groups of at least {min_group} "
            "labelled requests, with both outcomes for equalized odds)",
            **figures,
        )
    top = gaps[worst]
    return _check(
        FAIL if top["failed"] else PASS,
        metric=worst,
        candidate=top["candidate"],
        stable=top["stable"],
        increase=top["increase"],
        scope=top["candidate_scope"],
        **figures,
    )


def _overall(checks: Mapping[str, Mapping[str, Any]]) -> str:
    verdicts = {c["verdict"] for c in checks.values()}
    if FAIL in verdicts:
        return FAIL
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return PASS


def analyse_live(
    stable: Sample,
    candidate: Sample,
    th: Mapping[str, float],
    *,
    labelled: tuple[Any, Any] | None = None,
    task: str = "classification",
    metric: str | None = None,
    classes: tuple[Sequence[Any] | None, Sequence[Any] | None] = (None, None),
    fairness: tuple[Labelled | None, Labelled | None] | None = None,
    sensitive: Sequence[str] = (),
) -> dict[str, Any]:
    """A canary step: both versions' live traffic over the step's interval; ``labelled``
    is ((labels, predictions) of stable, of candidate) where labels have joined;
    ``fairness`` the same requests with their sensitive features (``sensitive``: the
    model's)."""
    minimum = int(th["min_requests"])
    counts = {"stable_requests": stable.requests, "candidate_requests": candidate.requests}
    if candidate.requests < minimum or stable.requests < minimum:
        return {
            "verdict": INCONCLUSIVE,
            "reason": f"fewer than {minimum} requests on a side "
            f"(candidate {candidate.requests}, stable {stable.requests})",
            "checks": {},
            **counts,
        }
    checks = {
        "error_rate": error_rate_check(stable, candidate, th),
        "latency_p99": latency_check(stable, candidate, th),
        "prediction_psi": prediction_drift_check(stable, candidate, th),
        "metric": metric_check(
            *(labelled or (None, None)), th, task=task, metric=metric, classes=classes
        ),
        "fairness": fairness_check(
            *(fairness or (None, None)),
            th,
            task=task,
            sensitive=sensitive,
            positive=common_metrics.positive_class(classes[0]),
        ),
    }
    return {"verdict": _overall(checks), "checks": checks, **counts}


def analyse_paired(
    stable: Sample,
    candidate: Sample,
    th: Mapping[str, float],
    *,
    task: str,
    labelled: tuple[Any, Any] | None = None,
    metric: str | None = None,
    classes: tuple[Sequence[Any] | None, Sequence[Any] | None] = (None, None),
    fairness: tuple[Labelled | None, Labelled | None] | None = None,
    sensitive: Sequence[str] = (),
) -> dict[str, Any]:
    """A replay or a shadow: the same rows, scored by both (row i of each is the same request).

    ``labelled``: the metric check on the rows that labels joined, each side's
    (labels, predictions[, scores]) on the same rows; ``fairness``: the fairness check on
    them. Each is judged only when given."""
    checks = {
        "error_rate": error_rate_check(stable, candidate, th),
        "latency_p99": latency_check(stable, candidate, th),
        "prediction_psi": prediction_drift_check(stable, candidate, th),
    }
    both = (stable.status == 200) & (candidate.status == 200)
    a = _take(stable, both)
    b = _take(candidate, both)
    checks["disagreement"] = disagreement_check(a, b, th, task=task)
    if labelled is not None:
        checks["metric"] = metric_check(*labelled, th, task=task, metric=metric, classes=classes)
    if fairness is not None:
        checks["fairness"] = fairness_check(
            *fairness,
            th,
            task=task,
            sensitive=sensitive,
            positive=common_metrics.positive_class(classes[0]),
        )
    minimum = int(th["min_requests"])
    verdict = _overall(checks)
    reason = ""
    if verdict != FAIL and candidate.requests < minimum:
        verdict, reason = INCONCLUSIVE, f"fewer than {minimum} rows to replay"
    return {
        "verdict": verdict,
        "reason": reason,
        "checks": checks,
        "stable_requests": stable.requests,
        "candidate_requests": candidate.requests,
    }


def mcnemar(
    labels: Sequence[Any], stable: Sequence[Any], candidate: Sequence[Any]
) -> dict[str, Any]:
    """McNemar's test of two classifiers on the same labelled rows (a shadow's).

    ``b``: rows stable got right and the candidate wrong; ``c``: the reverse. Under
    "equally accurate" b ~ Binomial(b + c, 1/2): the exact two-sided p-value is
    min(1, 2 P(X <= min(b, c))), computed here from the binomial sum (it equals
    ``scipy.stats.binomtest(b, b + c, 0.5).pvalue``); the chi-square statistic with
    the continuity correction, (|b - c| - 1)^2 / (b + c), is reported beside it.
    """
    if not (len(labels) == len(stable) == len(candidate)):
        raise ValueError("McNemar compares the same rows")
    right_a = np.asarray([str(x) == str(y) for x, y in zip(stable, labels, strict=True)])
    right_b = np.asarray([str(x) == str(y) for x, y in zip(candidate, labels, strict=True)])
    b = int((right_a & ~right_b).sum())
    c = int((~right_a & right_b).sum())
    n = b + c
    if n == 0:
        p_value, statistic = 1.0, 0.0
    else:
        k = min(b, c)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
        p_value = min(1.0, 2.0 * tail)
        statistic = (abs(b - c) - 1) ** 2 / n if n else 0.0
    return {
        "rows": len(labels),
        "stable_only_right": b,
        "candidate_only_right": c,
        "stable_accuracy": float(right_a.mean()) if len(labels) else None,
        "candidate_accuracy": float(right_b.mean()) if len(labels) else None,
        "statistic": float(statistic),
        "p_value": float(p_value),
    }


def agreement_by_segment(
    segments: Mapping[str, Sequence[Any]], stable: Sequence[Any], candidate: Sequence[Any]
) -> dict[str, list[dict[str, Any]]]:
    """For each categorical column, the share of rows on which both predictions agree,
    by the column's value (most frequent first; at most 20 values, the rest together)."""
    agree = np.asarray([str(x) == str(y) for x, y in zip(stable, candidate, strict=True)])
    out: dict[str, list[dict[str, Any]]] = {}
    for column, values in segments.items():
        keys = pd.Series([("(missing)" if v is None else str(v)) for v in values])
        if len(keys) != len(agree):
            raise ValueError("segments and predictions are the same rows")
        counts = keys.value_counts()
        top = list(counts.index[:20])
        keys = keys.where(keys.isin(top), "(other)")
        rows = []
        for value, idx in keys.groupby(keys).groups.items():
            picked = agree[np.asarray(list(idx))]
            rows.append({"value": value, "rows": len(picked), "agreement": float(picked.mean())})
        out[column] = sorted(rows, key=lambda r: (-r["rows"], r["value"]))
    return out


def _take(sample: Sample, mask: np.ndarray) -> list[Any]:
    ok = sample.status == 200
    predictions = iter(sample.prediction)
    out = []
    for good, keep in zip(ok, mask, strict=True):
        value = next(predictions) if good else None
        if keep:
            out.append(value)
    return out


def failed_checks(analysis: Mapping[str, Any]) -> list[str]:
    return sorted(
        name for name, c in analysis.get("checks", {}).items() if c.get("verdict") == FAIL
    )


def rollout_decision(
    failures: Mapping[str, int],
    analysis: Mapping[str, Any],
    *,
    inconclusive_in_row: int,
    inconclusive_limit: int,
    limits: Mapping[str, int] = DEFAULT_FAILURE_LIMITS,
) -> tuple[str, dict[str, int], str]:
    """What a canary does after an analysis: ``("advance" | "wait" | "pause" |
    "rollback", the failure counts after it, why)``."""
    counts = dict(failures)
    verdict = analysis["verdict"]
    if verdict == FAIL:
        over = []
        for name in failed_checks(analysis):
            counts[name] = counts.get(name, 0) + 1
            if counts[name] >= limits.get(name, 2):
                over.append(name)
        if over:
            parts = [_describe(name, analysis["checks"][name]) for name in over]
            return "rollback", counts, "; ".join(parts)
        return "wait", counts, "failed " + ", ".join(failed_checks(analysis)) + " (under limit)"
    if verdict == INCONCLUSIVE:
        if inconclusive_in_row + 1 >= inconclusive_limit:
            return (
                "pause",
                counts,
                f"{inconclusive_in_row + 1} inconclusive analyses in a row: "
                f"{analysis.get('reason', '')}",
            )
        return "wait", counts, f"inconclusive: {analysis.get('reason', '')}"
    return "advance", counts, "all checks passed"


def _describe(name: str, check: Mapping[str, Any]) -> str:
    def n(x: Any) -> str:
        return f"{x:.4g}" if isinstance(x, int | float) else str(x)

    if name == "prediction_psi":
        return (
            f"prediction PSI {n(check.get('psi'))} >= {n(check.get('limit'))} "
            f"({check.get('p_value_test')} p = {n(check.get('p_value'))})"
        )
    if name == "error_rate":
        return (
            f"error rate {n(check.get('candidate'))} vs stable {n(check.get('stable'))} "
            f"(+{n(check.get('delta'))} > {n(check.get('limit'))})"
        )
    if name == "latency_p99":
        return (
            f"p99 latency {n(check.get('candidate'))} ms > {n(check.get('limit'))} ms "
            f"(stable {n(check.get('stable'))} ms)"
        )
    if name == "disagreement":
        return f"disagreement {n(check.get('rate'))} > {n(check.get('limit'))}"
    if name == "metric":
        return (
            f"{check.get('metric')} {n(check.get('candidate'))} vs stable "
            f"{n(check.get('stable'))} (drop {n(check.get('drop'))} > {n(check.get('limit'))})"
        )
    if name == "fairness":
        return (
            f"fairness {check.get('metric')} {n(check.get('candidate'))} vs stable "
            f"{n(check.get('stable'))} by {check.get('scope')} "
            f"(+{n(check.get('increase'))} > {n(check.get('limit'))})"
        )
    return name
