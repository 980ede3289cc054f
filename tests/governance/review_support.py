"""Helpers for review tests: a high-risk version with its evidence, and the signing personas."""

from __future__ import annotations

import hashlib
from typing import Any

from common.audit import SystemActor
from common.evidence import EvidenceItem, evidence_produced
from governance import policies, reviews
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


FAILED_RULES = [
    {
        "rule": "demographic_parity_ratio",
        "scope": "sex",
        "value": 0.6123,
        "threshold": 0.8,
        "status": "failed",
        "passed": False,
    }
]


def file_failed_audit(version: Any, tag: str = "1") -> None:
    evidence_produced(
        actor=version.created_by,
        item=EvidenceItem(
            version_id=version.pk,
            kind="fairness_audit",
            sha256=digest(f"{version.pk}:audit:{tag}"),
            passed=False,
            summary="1 rule failed",
            source="governance.fairnessaudit:7",
            details={"status": "failed", "failed_rules": FAILED_RULES},
        ),
    )


def failing_version(personas: Any, name: str = "credit") -> Any:
    version = high_risk_version(personas, name=name, evidence=False)
    file_evidence(version, "evaluation_report")
    file_failed_audit(version)
    return version  # the model card is missing


def allow_override(role: str = "compliance") -> Any:
    """A new version of the high tier's policy whose ``role`` may override evidence."""
    fields = dict(policies.DEFAULT_POLICIES["high"], evidence_override_by=role)
    return policies.policy_create(actor=SystemActor("tests"), risk_tier="high", **fields)
