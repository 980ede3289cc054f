"""Governed changes of the model fields that approval policies read.

**Risk tier.** A model's tier picks the policy its next review is frozen under,
so lowering it chooses a weaker gate. Lowering is therefore a request
(``RiskTierChange``) that takes effect only when a person holding the role the
current tier's policy names (``tier_lowering_role``: compliance by default, or
risk) approves it with an e-signature; the requester never decides their own
request. Raising stays immediate (``PATCH /api/v1/models/{name}/``). A review
already frozen keeps its policy whatever the tier becomes.

States (one writer, ``_decide``)::

    pending -> approved   (an approver of the required role; the tier changes in
                           the same transaction)
    pending -> rejected   (an approver of the required role)
    pending -> withdrawn  (the requester, or anyone who manages the model)

**Team.** The independent-validator rule reads the model's team when a
validator signs; changing the team while such a review is in review would
change who counts as independent mid-review, so it is refused until the review
is decided.

Both rules are a model-change gate (``registry.gates``) registered in
``GovernanceConfig.ready``: the registry calls it under the model's row lock.

Lock order: the model row, then the change row, then (last) the audit chain.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from common.audit import SystemActor, audit_record, snapshot
from common.errors import DomainError, conflict
from common.events import publish_event
from common.links import absolute_url
from common.permissions import get_visible, require, user_can
from governance.choices import OPEN_REVIEW_STATES, RiskTierChangeState, TierLoweringRole
from governance.models import Review, RiskTierChange
from governance.policies import policy_current
from registry import services as registry_services
from registry.choices import RiskTier
from registry.models import RegisteredModel

logger = logging.getLogger(__name__)

TIER_RANK: dict[str, int] = {
    RiskTier.LOW.value: 0,
    RiskTier.MEDIUM.value: 1,
    RiskTier.HIGH.value: 2,
}
S = RiskTierChangeState
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN}),
    S.APPROVED: frozenset(),
    S.REJECTED: frozenset(),
    S.WITHDRAWN: frozenset(),
}
CHANGE_FIELDS = (
    "from_tier",
    "to_tier",
    "reason",
    "approver_role",
    "state",
    "decision_comment",
)


def is_lowering(old: str, new: str) -> bool:
    return TIER_RANK.get(new, 0) < TIER_RANK.get(old, 0)


def _request_path(model: RegisteredModel) -> str:
    return f"/api/v1/models/{model.name}/risk-tier-changes/"


def approver_role_for(*, risk_tier: str) -> str:
    """The role that approves lowering a model from ``risk_tier`` (its current policy says)."""
    policy = policy_current(risk_tier=risk_tier)
    role = getattr(policy, "tier_lowering_role", "") or TierLoweringRole.COMPLIANCE
    return str(role)


def tier_change_roles(*, user: Any, model: RegisteredModel) -> list[str]:
    """The tier-lowering roles ``user`` holds on ``model``: group membership + approve."""
    if not getattr(user, "is_authenticated", False) or not user_can(user, "approve", model):
        return []
    groups = set(user.groups.values_list("name", flat=True))
    roles = []
    if settings.GOVERNANCE_COMPLIANCE_GROUP in groups:
        roles.append(TierLoweringRole.COMPLIANCE.value)
    if settings.GOVERNANCE_RISK_GROUP in groups:
        roles.append(TierLoweringRole.RISK.value)
    return roles


# --- the gate (registry.gates) ----------------------------------------------------------


def model_change_gate(
    *, actor: Any, model: RegisteredModel, changes: dict[str, Any], authority: Any = None
) -> None:
    """Refuse what would weaken a gate: an unapproved lowering, a team change mid-review."""
    new_tier = changes.get("risk_tier")
    if new_tier is not None and is_lowering(model.risk_tier, new_tier):
        approved = (
            isinstance(authority, RiskTierChange)
            and authority.state == S.APPROVED
            and authority.registered_model_id == model.pk
            and authority.from_tier == model.risk_tier
            and authority.to_tier == new_tier
        )
        if not approved:
            raise conflict(
                "governed_change",
                f"Lowering the risk tier of {model.name} from {model.risk_tier} to {new_tier} "
                f"needs the approval of the {approver_role_for(risk_tier=model.risk_tier)} "
                f"role: request it with POST {_request_path(model)} "
                '{"risk_tier", "reason"}. Raising a tier is immediate.',
                field="risk_tier",
                current=model.risk_tier,
                requested=new_tier,
                request_url=_request_path(model),
            )
    if "team" in changes and _team_id(changes["team"]) != model.team_id:
        in_flight = (
            Review.objects.filter(
                version__registered_model=model,
                state__in=OPEN_REVIEW_STATES,
                policy__independent_validator=True,
            )
            .select_related("version")
            .first()
        )
        if in_flight is not None:
            raise conflict(
                "review_in_flight",
                f"The team of {model.name} decides who may sign {in_flight.version} as an "
                "independent validator; it cannot change while that review is in review.",
                field="team",
                version=in_flight.version.number,
            )


def _team_id(team: Any) -> Any:
    return getattr(team, "pk", team)


# --- services ---------------------------------------------------------------------------


@transaction.atomic
def risk_tier_change_request(
    *, actor: Any, model: RegisteredModel, risk_tier: str, reason: str
) -> RiskTierChange:
    """Ask to lower ``model``'s tier; nothing changes until an approver decides."""
    require(actor, "manage", model)
    if risk_tier not in RiskTier.values:
        raise DomainError(
            "invalid", f"Unknown risk tier {risk_tier!r}.", details={"risk_tier": RiskTier.values}
        )
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            "invalid",
            "Say why the tier should be lowered; the approver reads it.",
            details={"reason": "required"},
        )
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    if not is_lowering(model.risk_tier, risk_tier):
        raise DomainError(
            "not_a_lowering",
            f"{model.name} is {model.risk_tier} risk; only a lowering is requested here. "
            f"Raise the tier directly with PATCH /api/v1/models/{model.name}/ (immediate).",
            details={"current": model.risk_tier, "requested": risk_tier},
        )
    try:
        with transaction.atomic():
            change = RiskTierChange.objects.create(
                registered_model=model,
                from_tier=model.risk_tier,
                to_tier=risk_tier,
                reason=reason[:4000],
                approver_role=approver_role_for(risk_tier=model.risk_tier),
                requested_by=actor,
            )
    except IntegrityError:
        pending = RiskTierChange.objects.filter(registered_model=model, state=S.PENDING).first()
        raise conflict(
            "change_pending",
            f"{model.name} already has a pending risk-tier change; it must be decided "
            "or withdrawn first.",
            change=pending.pk if pending else None,
        ) from None
    audit_record(
        actor=actor,
        action="governance.risk_tier_change.requested",
        obj=change,
        after=snapshot(change, CHANGE_FIELDS),
    )
    _announce(change, "requested")
    _notify_approvers(change)
    return change


def risk_tier_change_approve(
    *,
    actor: Any,
    change: RiskTierChange,
    password: str,
    comment: str = "",
    via_api: bool = False,
) -> RiskTierChange:
    """Approve with an e-signature: the tier changes now, in the same transaction."""
    _check_signature(actor, password, change, via_api)
    return _decide(actor=actor, change=change, to=S.APPROVED, comment=comment)


def risk_tier_change_reject(
    *,
    actor: Any,
    change: RiskTierChange,
    password: str,
    comment: str = "",
    via_api: bool = False,
) -> RiskTierChange:
    _check_signature(actor, password, change, via_api)
    return _decide(actor=actor, change=change, to=S.REJECTED, comment=comment)


def risk_tier_change_withdraw(*, actor: Any, change: RiskTierChange) -> RiskTierChange:
    """The requester (or anyone managing the model) takes the request back."""
    if actor.pk != change.requested_by_id:
        require(actor, "manage", change.registered_model)
    return _decide(actor=actor, change=change, to=S.WITHDRAWN, comment="withdrawn")


def _check_signature(actor: Any, password: str, change: RiskTierChange, via_api: bool) -> None:
    """The sign-off rules: API decisions only for tiers in GOVERNANCE_API_SIGNOFF_TIERS
    (the tier being left), and the password re-entered.

    Checked before anything is read or written (check_password, not authenticate:
    a signature is not a login and never locks the account).
    """
    if via_api and change.from_tier not in settings.GOVERNANCE_API_SIGNOFF_TIERS:
        raise DomainError(
            "ui_only",
            f"Decisions on lowering a {change.from_tier}-risk model are given in the web UI "
            f"only (/models/{change.registered_model.name}/).",
            details={"risk_tier": change.from_tier},
            status=403,
        )
    if not actor.check_password(password or ""):
        logger.warning("wrong signature password by %s on %s", actor.get_username(), change)
        raise DomainError(
            "wrong_password", "The password is wrong; nothing was decided.", status=403
        )


@transaction.atomic
def _decide(*, actor: Any, change: RiskTierChange, to: str, comment: str) -> RiskTierChange:
    """The one writer of ``RiskTierChange.state``."""
    model = RegisteredModel.objects.select_for_update().get(pk=change.registered_model_id)
    change = RiskTierChange.objects.select_for_update().get(pk=change.pk)
    if to not in ALLOWED_TRANSITIONS[change.state]:
        raise conflict(
            "invalid_transition",
            f"A {change.state} risk-tier change cannot become {to}.",
            state=change.state,
        )
    if to in (S.APPROVED, S.REJECTED):
        if actor.pk == change.requested_by_id:
            raise DomainError(
                "sod_requester",
                "You requested this change; another person decides it.",
                details={"rule": "requester_cannot_decide"},
                status=403,
            )
        if change.approver_role not in tier_change_roles(user=actor, model=model):
            raise DomainError(
                "no_role",
                f"Deciding this change needs the {change.approver_role} role on {model.name}.",
                details={"required_role": change.approver_role},
                status=403,
            )
    if to == S.APPROVED and model.risk_tier != change.from_tier:
        raise conflict(
            "stale_request",
            f"{model.name} is now {model.risk_tier} risk, not {change.from_tier} as requested; "
            "reject this request and ask again.",
            current=model.risk_tier,
            requested_from=change.from_tier,
        )
    before = snapshot(change, ("state",))
    change.state = to
    change.decided_by = actor
    change.decided_at = timezone.now()
    change.decision_comment = (comment or "")[:4000]
    change.save(update_fields=["state", "decided_by", "decided_at", "decision_comment"])
    audit_record(
        actor=actor,
        action=f"governance.risk_tier_change.{to}",
        obj=change,
        before=before,
        after=snapshot(change, CHANGE_FIELDS),
    )
    if to == S.APPROVED:
        # The registry's one writer of the tier, with the approved change as the
        # authority that lets the gate through. Reviews already frozen keep their policy.
        applier: Any = SystemActor(f"governance.risk_tier_change#{change.pk}")
        registry_services.registered_model_update(
            actor=applier,
            model=model,
            authority=change,
            risk_tier=change.to_tier,
        )
    _announce(change, to)
    return change


def _announce(change: RiskTierChange, what: str) -> None:
    publish_event(
        f"governance.risk_tier_change.{what}",
        {
            "model": change.registered_model.name,
            "change": change.pk,
            "from": change.from_tier,
            "to": change.to_tier,
            "state": change.state,
            "approver_role": change.approver_role,
        },
    )


def _notify_approvers(change: RiskTierChange) -> None:
    """Email the people who hold the approver role on the model, after commit."""
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail

    model = change.registered_model
    group = (
        settings.GOVERNANCE_COMPLIANCE_GROUP
        if change.approver_role == TierLoweringRole.COMPLIANCE
        else settings.GOVERNANCE_RISK_GROUP
    )
    candidates = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=group)
        .exclude(email="")
        .exclude(pk=change.requested_by_id)
    )
    recipients = sorted({u.email for u in candidates if user_can(u, "approve", model)})
    if not recipients:
        return
    subject = f"[ModelGate] Risk tier change to approve: {model.name}"
    body = (
        f"{change.requested_by.get_username()} asks to lower {model.name} from "
        f"{change.from_tier} to {change.to_tier} risk.\nReason: {change.reason}\n"
        f"{absolute_url('registry:model-detail', model.name)}\n"
    )
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients))


# --- reads ------------------------------------------------------------------------------


def risk_tier_change_list(*, user: Any, model: RegisteredModel) -> QuerySet[RiskTierChange]:
    return (
        RiskTierChange.objects.visible_to(user, "view")
        .filter(registered_model=model)
        .select_related("registered_model", "requested_by", "decided_by")
    )


def risk_tier_change_get(*, user: Any, model: RegisteredModel, pk: Any) -> RiskTierChange:
    return get_visible(
        RiskTierChange.objects.select_related("registered_model", "requested_by", "decided_by"),
        user,
        f"Risk-tier change {pk} of {model.name}",
        registered_model=model,
        pk=pk,
    )


def versions_under_open_review() -> list[int]:
    """Data hold (registry.gates): versions whose review is open keep their logged data."""
    return list(
        Review.objects.filter(state__in=OPEN_REVIEW_STATES).values_list("version_id", flat=True)
    )
