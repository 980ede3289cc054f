"""Evidence hooks: how evidence producers and the governance gate meet.

Producers (evaluation jobs in lifecycle, fairness audits and model cards in
governance, reference profiles in monitoring) call ``evidence_produced`` in the
same transaction that stores their result. Governance registers a recorder in
its ``AppConfig.ready`` that files the item against the version (and its
review), so the evidence row and the result commit or roll back together.

Thresholds flow the other way: before a fairness audit or an evaluation runs,
the producer asks ``policy_thresholds(version, kind)`` and freezes the answer on
its own row. Governance answers from the approval policy frozen at submission
(or the tier's current policy); without a provider the documented defaults in
``DEFAULT_THRESHOLDS`` apply.

This module imports no domain app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Evidence kinds an approval policy can require.
EVALUATION_REPORT = "evaluation_report"
FAIRNESS_AUDIT = "fairness_audit"
EXPLAINABILITY = "explainability"
MODEL_CARD = "model_card"
DRIFT_BASELINE = "drift_baseline"
EVIDENCE_KINDS = (EVALUATION_REPORT, FAIRNESS_AUDIT, EXPLAINABILITY, MODEL_CARD, DRIFT_BASELINE)

DEFAULT_THRESHOLDS: dict[str, dict[str, Any]] = {
    # Rule thresholds as accepted by ``governance.fairness.audit`` (keys it
    # leaves out take its documented defaults: four-fifths rule, 0.1 on
    # differences), plus the minimum group size that decides pass/fail.
    FAIRNESS_AUDIT: {"min_group_size": 30},
    # Metric floors/ceilings, e.g. {"roc_auc": {"min": 0.7}, "rmse": {"max": 60}}.
    EVALUATION_REPORT: {},
}


@dataclass(frozen=True)
class EvidenceItem:
    """One piece of evidence about a model version.

    ``sha256`` is the digest of the canonical report the item stands for; a
    sign-off records it, and a later item of the same kind with another digest
    invalidates that sign-off.
    """

    version_id: int
    kind: str
    sha256: str
    passed: bool | None  # None: informative only (e.g. explainability)
    summary: str
    source: str  # "<app>.<model>:<pk>" of the row holding the full result
    details: dict[str, Any] = field(default_factory=dict)


EvidenceRecorder = Callable[..., None]
ThresholdProvider = Callable[[Any, str], dict[str, Any] | None]
_recorders: list[EvidenceRecorder] = []
_threshold_providers: list[ThresholdProvider] = []


def register_evidence_recorder(recorder: EvidenceRecorder) -> EvidenceRecorder:
    """Register ``recorder(*, actor, item)``; called inside the producer's transaction."""
    if recorder not in _recorders:
        _recorders.append(recorder)
    return recorder


def evidence_produced(*, actor: Any, item: EvidenceItem) -> None:
    if item.kind not in EVIDENCE_KINDS:
        raise ValueError(f"unknown evidence kind {item.kind!r}")
    for recorder in _recorders:
        recorder(actor=actor, item=item)


def register_threshold_provider(provider: ThresholdProvider) -> ThresholdProvider:
    """Register ``provider(version, kind) -> dict | None``; the first non-None answer wins."""
    if provider not in _threshold_providers:
        _threshold_providers.append(provider)
    return provider


def policy_thresholds(version: Any, kind: str) -> dict[str, Any]:
    """Thresholds that judge ``kind`` evidence for ``version``, to be frozen by the caller."""
    for provider in _threshold_providers:
        answer = provider(version, kind)
        if answer is not None:
            return dict(answer)
    return dict(DEFAULT_THRESHOLDS.get(kind, {}))
