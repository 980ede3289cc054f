"""Approval policies: what each risk tier demands, versioned, and how evidence is judged by them.

A policy is never edited once a review has used it (the model refuses it);
administrators add a new version of the tier's policy instead, and may correct
a version no review has used yet. Both writes are audited.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from common.audit import SystemActor, audit_record, snapshot
from common.errors import DomainError
from governance.choices import SignOffRole
from governance.models import ApprovalPolicy, Review

# Version 1 of each tier's policy, seeded on a new database (and again after a
# test flush) by ``governance.apps.ensure_default_policies``. Migration 0003
# keeps its own frozen copy of what it seeded: a change here reaches existing
# databases only through a new policy version or a new data migration.
DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    "low": {
        "required_roles": ["owner"],
        "required_evidence": ["evaluation_report"],
        "thresholds": {"fairness_audit": {"min_group_size": 30}},
        "validity_days": 365,
        "independent_validator": False,
        "description": "Low risk: the owner signs after an evaluation report.",
    },
    "medium": {
        "required_roles": ["owner", "validator"],
        "required_evidence": ["evaluation_report", "model_card"],
        "thresholds": {
            "evaluation_report:classification": {"roc_auc": {"min": 0.6}},
            "fairness_audit": {"min_group_size": 30},
        },
        "validity_days": 180,
        "independent_validator": False,
        "description": "Medium risk: owner and validator; evaluation and a complete model card.",
    },
    "high": {
        "required_roles": ["owner", "validator", "compliance"],
        "required_evidence": ["evaluation_report", "fairness_audit", "model_card"],
        "thresholds": {
            "evaluation_report:classification": {"roc_auc": {"min": 0.6}},
            "fairness_audit": {
                "min_group_size": 30,
                "demographic_parity_ratio_min": 0.8,
            },
        },
        "validity_days": 90,
        "independent_validator": True,
        # Added by migration 0006 (the existing tier's policy is corrected or followed).
        "sensitive_inputs_acknowledged_by": "compliance",
        "description": (
            "High risk: owner, a validator from outside the owning team and a compliance "
            "officer; evaluation, a passed fairness audit and a complete model card."
        ),
    },
}
# What an administrator may correct on a policy version no review has used.
EDITABLE_FIELDS = (
    "required_roles",
    "required_evidence",
    "thresholds",
    "validity_days",
    "independent_validator",
    "tier_lowering_role",
    "sensitive_inputs_acknowledged_by",
    "evidence_override_by",
    "description",
)


def _check_roles(roles: list[str], acknowledged_by: str, override_by: str = "") -> None:
    if not roles or any(r not in SignOffRole.values for r in roles):
        raise DomainError("invalid", "Unknown or no sign-off roles.", details={"roles": roles})
    if acknowledged_by and acknowledged_by not in roles:
        raise DomainError(
            "invalid",
            "Sensitive inputs can only be acknowledged by a role the policy requires.",
            details={"sensitive_inputs_acknowledged_by": acknowledged_by, "roles": roles},
        )
    if override_by and override_by not in roles:
        raise DomainError(
            "invalid",
            "Evidence can only be overridden by a role the policy requires.",
            details={"evidence_override_by": override_by, "roles": roles},
        )


def policy_current(*, risk_tier: str) -> ApprovalPolicy | None:
    return ApprovalPolicy.objects.filter(risk_tier=risk_tier).order_by("-version").first()


@transaction.atomic
def policy_create(*, actor: Any, risk_tier: str, **fields: Any) -> ApprovalPolicy:
    """A new version of a tier's policy; earlier versions are never edited."""
    if not (isinstance(actor, SystemActor) or getattr(actor, "is_superuser", False)):
        raise DomainError("permission_denied", "Only administrators add policies.", status=403)
    _check_roles(
        fields.get("required_roles", []),
        fields.get("sensitive_inputs_acknowledged_by", ""),
        fields.get("evidence_override_by", ""),
    )
    last = ApprovalPolicy.objects.select_for_update().filter(risk_tier=risk_tier)
    number = max([p.version for p in last] or [0]) + 1
    policy = ApprovalPolicy.objects.create(
        risk_tier=risk_tier,
        version=number,
        created_by=None if isinstance(actor, SystemActor) else actor,
        **fields,
    )
    audit_record(
        actor=actor,
        action="governance.policy.created",
        obj=policy,
        after=snapshot(
            policy,
            (
                "risk_tier",
                "version",
                "required_roles",
                "required_evidence",
                "thresholds",
                "evidence_override_by",
            ),
        ),
    )
    return policy


@transaction.atomic
def policy_update(*, actor: Any, policy: ApprovalPolicy, **fields: Any) -> ApprovalPolicy:
    """Correct a policy version that no review has used yet (the admin's edit).

    Race: ``review_submit`` locks the policy row it freezes, and this locks it
    before asking whether a review uses it, so a policy is never changed under
    a review that froze it (a used one is refused with 409).
    """
    if not (isinstance(actor, SystemActor) or getattr(actor, "is_superuser", False)):
        raise DomainError("permission_denied", "Only administrators edit policies.", status=403)
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise DomainError(
            "invalid",
            f"A policy's {', '.join(unknown)} cannot be edited; add a new version instead.",
            details={"fields": unknown},
        )
    _check_roles(
        fields.get("required_roles", policy.required_roles),
        fields.get("sensitive_inputs_acknowledged_by", policy.sensitive_inputs_acknowledged_by),
        fields.get("evidence_override_by", policy.evidence_override_by),
    )
    locked = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
    if locked.is_used():
        raise DomainError(
            "policy_in_use",
            f"{locked} is used by a review; add a new version instead of editing it.",
            details={"policy": locked.pk},
            status=409,
        )
    before = snapshot(locked, EDITABLE_FIELDS)
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    audit_record(
        actor=actor,
        action="governance.policy.updated",
        obj=locked,
        before=before,
        after=snapshot(locked, EDITABLE_FIELDS),
    )
    return locked


def policy_thresholds_for(version: Any, kind: str) -> dict[str, Any] | None:
    """Threshold provider (common.evidence): the frozen policy, else the tier's current one."""
    review = Review.objects.filter(version_id=version.pk).select_related("policy").first()
    policy = review.policy if review and review.policy else None
    if policy is None:
        policy = policy_current(risk_tier=version.registered_model.risk_tier)
    if policy is None:
        return None
    return kind_thresholds(policy, kind, version.registered_model.task)


def kind_thresholds(policy: ApprovalPolicy, kind: str, task: str) -> dict[str, Any] | None:
    """``thresholds["<kind>:<task>"]`` (``evaluation_report:classification``), else ``[kind]``."""
    answer = policy.thresholds.get(f"{kind}:{task}")
    return answer if answer is not None else policy.thresholds.get(kind)
