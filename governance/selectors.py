"""Governance reads with rules. Lists start from ``visible_to``.

Reviews: the review of a version, its checklist against the frozen policy, the
sign-off roles a user holds, what waits for a user's sign-off, the reviews and
sign-offs a user may see, recent decisions and deployments. Fairness audits and
mitigation runs of a version. The audit trail (auditors) and webhooks
(administrators), which have no object permissions.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import CharField, QuerySet
from django.db.models.functions import Cast

from common.errors import DomainError
from common.models import AuditEvent
from common.permissions import can_globally, get_visible, user_can
from governance import evidence_rules
from governance.choices import DECIDED_REVIEW_STATES, ReviewState, SignOffDecision, SignOffRole
from governance.models import (
    Evidence,
    FairnessAudit,
    MitigationRun,
    Review,
    SignOff,
    Webhook,
)
from governance.policies import kind_thresholds, policy_current
from registry.models import Alias, ModelVersion

S = ReviewState

# --------------------------------------------------------------------------- reviews


def review_get_or_draft(*, version: ModelVersion) -> Review:
    review = Review.objects.filter(version=version).first()
    return review or Review(version=version, state=S.DRAFT)


def latest_evidence(*, version: ModelVersion) -> dict[str, Evidence]:
    latest: dict[str, Evidence] = {}
    for item in Evidence.objects.filter(version=version).order_by("produced_at", "pk"):
        latest[item.kind] = item
    return latest


def roles_of(*, user: Any, version: ModelVersion) -> list[str]:
    """The sign-off roles ``user`` may hold on ``version``'s model."""
    if not getattr(user, "is_authenticated", False):
        return []
    model = version.registered_model
    roles = []
    if model.owner_id == user.pk or user_can(user, "manage", model):
        roles.append(SignOffRole.OWNER.value)
    if user_can(user, "approve", model):
        groups = set(user.groups.values_list("name", flat=True))
        if settings.GOVERNANCE_VALIDATOR_GROUP in groups:
            roles.append(SignOffRole.VALIDATOR.value)
        if settings.GOVERNANCE_COMPLIANCE_GROUP in groups:
            roles.append(SignOffRole.COMPLIANCE.value)
    return roles


def review_checklist(*, review: Review) -> list[dict[str, Any]]:
    """Each requirement of the frozen policy: met or missing, and why."""
    policy = review.policy or policy_current(risk_tier=review.version.registered_model.risk_tier)
    if policy is None:
        return [{"requirement": "policy", "met": False, "why": "No policy for this risk tier."}]
    items: list[dict[str, Any]] = []
    valid = (
        {s.role: s for s in review.signoffs.filter(valid=True).select_related("signer")}
        if review.pk
        else {}
    )
    for role in policy.required_roles:
        signoff = valid.get(role)
        if signoff is None:
            why = f"No valid sign-off by the {SignOffRole(role).label.lower()} yet."
            met = False
        elif signoff.decision != SignOffDecision.APPROVE:
            why = f"{signoff.signer.get_username()} decided {signoff.decision}."
            met = False
        else:
            why = f"Approved by {signoff.signer.get_username()} ({signoff.meaning})."
            met = True
        items.append({"requirement": f"signoff:{role}", "met": met, "why": why})
    evidence = latest_evidence(version=review.version)
    for kind in policy.required_evidence:
        item = evidence.get(kind)
        if item is None:
            met, why = False, f"No {kind.replace('_', ' ')} filed."
        elif item.passed is False:
            met, why = False, f"Latest {kind.replace('_', ' ')} failed: {item.summary}"
        elif (
            objection := evidence_rules.objection(
                item,
                policy_answer=kind_thresholds(policy, kind, review.version.registered_model.task),
            )
        ) is not None:
            met, why = False, objection
        else:
            met, why = True, item.summary or f"{kind.replace('_', ' ')} present"
        items.append(
            {
                "requirement": f"evidence:{kind}",
                "met": met,
                "why": why,
                "sha256": item.sha256 if item else None,
            }
        )
    return items


def waiting_for(*, user: Any) -> QuerySet[Review]:
    """Reviews in review where ``user`` holds a required role nobody has filled yet."""
    candidates = (
        Review.objects.visible_to(user, "view")
        .filter(state=S.IN_REVIEW)
        .select_related("version__registered_model", "policy")
    )
    pks = []
    for review in candidates[:200]:
        filled = set(review.signoffs.filter(valid=True).values_list("role", flat=True))
        mine = set(roles_of(user=user, version=review.version))
        if review.signoffs.filter(valid=True, signer_id=user.pk).exists():
            continue
        if (set(review.policy.required_roles) - filled) & mine:
            pks.append(review.pk)
    return Review.objects.filter(pk__in=pks).select_related("version__registered_model")


def review_list(*, user: Any, state: str | None = None) -> QuerySet[Review]:
    """The reviews of the models ``user`` may see, the most recently changed first."""
    queryset = (
        Review.objects.visible_to(user, "view")
        .select_related("version__registered_model", "policy")
        .order_by("-updated_at")
    )
    if state in ReviewState.values:
        queryset = queryset.filter(state=state)
    return queryset


def signoff_list(*, user: Any, version: ModelVersion) -> QuerySet[SignOff]:
    """The sign-offs on ``version``'s review (valid and voided), in signing order."""
    return (
        SignOff.objects.visible_to(user, "view")
        .filter(review__version=version)
        .select_related("signer")
        .order_by("signed_at", "pk")
    )


def recent_decisions(*, user: Any, limit: int = 10) -> QuerySet[Review]:
    """The latest approvals and rejections on the models ``user`` may see."""
    return (
        Review.objects.visible_to(user, "view")
        .filter(state__in=DECIDED_REVIEW_STATES)
        .select_related("version__registered_model")
        .order_by("-decided_at")[:limit]
    )


def recent_deployments(*, user: Any, limit: int = 10) -> QuerySet[AuditEvent]:
    """The latest alias moves (``registry.alias.set`` events) on aliases ``user`` may see.

    Matched on the event's object, the indexed (``object_type``, ``object_id``)
    pair, against the ids of the visible aliases; never on the event's text. The
    history of an alias deleted since leaves this list with it.
    """
    visible = (
        Alias.objects.visible_to(user, "view")
        .annotate(key=Cast("pk", output_field=CharField()))
        .values("key")
    )
    return AuditEvent.objects.filter(
        action="registry.alias.set",
        object_type=Alias._meta.label_lower,
        object_id__in=visible,
    ).order_by("-seq")[:limit]


# --------------------------------------------------------------------------- fairness audits


def audit_list(*, user: Any, version: ModelVersion) -> QuerySet[FairnessAudit]:
    return (
        FairnessAudit.objects.visible_to(user, "view")
        .filter(version=version)
        .select_related("dataset", "requested_by", "version__registered_model")
        .order_by("-queued_at")
    )


def audit_get(*, user: Any, version: ModelVersion, pk: Any) -> FairnessAudit:
    return get_visible(
        FairnessAudit.objects.select_related("dataset", "requested_by", "version"),
        user,
        f"Fairness audit {pk}",
        pk=pk,
        version=version,
    )


def latest_audit(*, version: ModelVersion) -> FairnessAudit | None:
    return (
        FairnessAudit.objects.filter(version=version, status="succeeded")
        .select_related("dataset")
        .order_by("-finished_at")
        .first()
    )


def mitigation_list(*, user: Any, version: ModelVersion) -> QuerySet[MitigationRun]:
    return (
        MitigationRun.objects.visible_to(user, "view")
        .filter(version=version)
        .select_related("audit", "candidate", "follow_up", "requested_by")
        .order_by("-queued_at")
    )


# --------------------------------------------------------------------------- audit trail, webhooks


def audit_event_list(*, user: Any) -> QuerySet[AuditEvent]:
    """The whole audit trail, for auditors (the global ``common.view_auditevent``)."""
    if not can_globally(user, "common.view_auditevent"):
        raise DomainError("permission_denied", "The audit trail is for auditors.", status=403)
    return AuditEvent.objects.all()


def webhook_list(*, user: Any) -> QuerySet[Webhook]:
    """The active webhooks, for administrators."""
    if not getattr(user, "is_superuser", False):
        raise DomainError("permission_denied", "Only administrators manage webhooks.", status=403)
    return Webhook.objects.filter(active=True)


def webhook_get(*, user: Any, pk: Any) -> Webhook:
    webhook = webhook_list(user=user).filter(pk=pk).first()
    if webhook is None:
        raise DomainError("not_found", "Webhook not found.", status=404)
    return webhook
