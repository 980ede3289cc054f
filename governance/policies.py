"""Approval policies: what each risk tier demands, versioned, and how evidence is judged by them.

A policy is never edited once a review has used it (the model refuses it);
administrators add a new version of the tier's policy instead.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from common.audit import SystemActor, audit_record, snapshot
from common.errors import DomainError
from governance.choices import SignOffRole
from governance.models import ApprovalPolicy, Review


def policy_current(*, risk_tier: str) -> ApprovalPolicy | None:
    return ApprovalPolicy.objects.filter(risk_tier=risk_tier).order_by("-version").first()


@transaction.atomic
def policy_create(*, actor: Any, risk_tier: str, **fields: Any) -> ApprovalPolicy:
    """A new version of a tier's policy; earlier versions are never edited."""
    if not (isinstance(actor, SystemActor) or getattr(actor, "is_superuser", False)):
        raise DomainError("permission_denied", "Only administrators add policies.", status=403)
    roles = fields.get("required_roles", [])
    if not roles or any(r not in SignOffRole.values for r in roles):
        raise DomainError("invalid", "Unknown or no sign-off roles.", details={"roles": roles})
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
            policy, ("risk_tier", "version", "required_roles", "required_evidence", "thresholds")
        ),
    )
    return policy


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
