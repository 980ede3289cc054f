"""Helpers for review tests: a high-risk version with its evidence, and the signing personas."""

from __future__ import annotations

import hashlib
from typing import Any

from common.evidence import EvidenceItem, evidence_produced
from governance import reviews
from tests.conftest import create_model, grant, ready_version

PASSWORD = "correct-horse-9"
HIGH_EVIDENCE = ("evaluation_report", "fairness_audit", "model_card")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_evidence(version: Any, kind: str, *, passed: bool | None = True, tag: str = "1") -> str:
    sha = digest(f"{version.pk}:{kind}:{tag}")
    evidence_produced(
        actor=version.created_by,
        item=EvidenceItem(
            version_id=version.pk,
            kind=kind,
            sha256=sha,
            passed=passed,
            summary=f"{kind} {'passed' if passed else 'failed'} ({tag})",
            source=f"tests.{kind}:{tag}",
        ),
    )
    return sha


def high_risk_version(personas: Any, name: str = "credit", evidence: bool = True) -> Any:
    """A high-risk model owned by the owner (on the credit-risk team), a version by the bot."""
    model = create_model(personas.owner, name=name, risk_tier="high", team=personas.team)
    grant(model, personas.bot, "contributor")
    grant(model, personas.validator, "approver")
    grant(model, personas.compliance, "approver")
    version = ready_version(model, personas.bot)
    if evidence:
        for kind in HIGH_EVIDENCE:
            file_evidence(version, kind)
    return version


def sign(user: Any, version: Any, decision: str = "approve", **kwargs: Any) -> Any:
    kwargs.setdefault("meaning", "approved_for_deployment")
    kwargs.setdefault("password", PASSWORD)
    return reviews.signoff_create(actor=user, version=version, decision=decision, **kwargs)
