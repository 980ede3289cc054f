"""Governance reads with rules. Lists start from ``visible_to``.

Reviews: the review of a version, its checklist against the frozen policy, the
sign-off roles a user holds, what waits for a user's sign-off, the reviews and
sign-offs a user may see, recent decisions and deployments. Fairness audits of a
version. The audit trail (auditors) and webhooks
(administrators), which have no object permissions.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import CharField, Prefetch, QuerySet
from django.db.models.functions import Cast

from common.errors import DomainError, conflict
from common.evidence import MODEL_CARD
from common.models import AuditEvent
from common.permissions import can_globally, get_visible, user_can
from governance import evidence_rules
from governance.choices import (
    ATTESTING_ROLES,
    DECIDED_REVIEW_STATES,
    ReviewState,
    SignOffDecision,
    SignOffRole,
)
from governance.models import (
    Evidence,
    FairnessAudit,
    ModelCard,
    Review,
    SignOff,
    Webhook,
)
from governance.policies import kind_thresholds, policy_current
from registry.models import Alias, ModelVersion
from registry.selectors import version_lineage

S = ReviewState

# --------------------------------------------------------------------------- reviews


def review_get_or_draft(*, version: ModelVersion) -> Review:
    review = Review.objects.filter(version=version).first()
    return review or Review(version=version, state=S.DRAFT)


def latest_evidence(*, version: ModelVersion) -> dict[str, Evidence]:
    """The latest evidence item of each kind filed for ``version``.

    A version without a card of its own that starts from an ancestor's narrative
    counts as having that card: its ``model_card`` item is the card it would file
    (unsaved, built by ``model_cards.inherited_card_evidence``), complete or not as
    the narrative is. Signing records its digest like any other item's.
    """
    latest: dict[str, Evidence] = {}
    for item in Evidence.objects.filter(version=version).order_by("produced_at", "pk"):
        latest[item.kind] = item
    if MODEL_CARD not in latest:
        # model_cards imports this module (card building reads the audits).
        from governance.model_cards import inherited_card_evidence

        inherited = inherited_card_evidence(version)
        if inherited is not None:
            latest[MODEL_CARD] = inherited
    return latest


def model_card_source(*, version: ModelVersion) -> tuple[ModelCard | None, ModelCard | None]:
    """(the version's own card, the card its narrative comes from).

    The narrative comes from the version's own card, else from the nearest
    ancestor that has one: a retrained or mitigated version starts from its
    parent's narrative, which may itself be inherited.
    """
    own = ModelCard.objects.filter(version=version).first()
    if own is not None:
        return own, own
    ancestors = [v.pk for v in version_lineage(version=version)]
    if not ancestors:
        return None, None
    cards = {c.version_id: c for c in ModelCard.objects.filter(version_id__in=ancestors)}
    return None, next((cards[pk] for pk in ancestors if pk in cards), None)


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


# --------------------------------------------------------------------------- who may sign


def _refusal(code: str, message: str, **details: Any) -> DomainError:
    return DomainError(code, message, details=details, status=403)


def _role_label(role: str) -> str:
    return SignOffRole(role).label.lower() if role in SignOffRole.values else role


def _role_refusal(
    *, user: Any, review: Review, role: str, mine: list[str], filled: dict[str, SignOff]
) -> DomainError | None:
    version = review.version
    model = version.registered_model
    policy = review.policy
    required = list(policy.required_roles)
    if role not in required:
        return _refusal(
            "no_role", f"The policy does not require a {_role_label(role)}.", required=required
        )
    if role not in mine:
        return _refusal(
            "no_role",
            f"You do not hold the {_role_label(role)} role on {model.name}.",
            your_roles=mine,
        )
    if role in filled:
        return conflict("role_filled", f"The {_role_label(role)} has already signed.", role=role)
    if role not in ATTESTING_ROLES and user.pk == version.created_by_id:
        return _refusal(
            "sod_registrant",
            f"You registered this version, so you may not sign it as the {_role_label(role)}: "
            "that role checks the author's work and must be someone else.",
            rule="author_not_independent",
            role=role,
        )
    if (
        role == SignOffRole.VALIDATOR
        and policy.independent_validator
        and model.team_id
        and user.groups.filter(pk=model.team_id).exists()
    ):
        return _refusal(
            "sod_not_independent",
            f"The validator of a {model.risk_tier}-risk model must not be on the owning team "
            f"({model.team.name}).",
            rule="independent_validator",
            team=model.team.name,
        )
    return None


def signing_choice(
    *,
    user: Any,
    review: Review,
    role: str | None = None,
    filled: dict[str, SignOff] | None = None,
) -> tuple[str | None, DomainError | None]:
    """The role ``user`` would sign ``review`` in, or the one reason they may not.

    The sign-off rules live here and only here; the sign-off service, the sign-off
    form, the home page's "waiting for my sign-off" and the signer emails all ask
    this function. In order, with the first that applies as the one reason:

    1. the review must be in review (409 ``not_in_review``);
    2. one person, one role: who already signed this review does not sign again
       (``sod_two_roles``);
    3. the role (``role``, or else the user's first required role still open) must be
       required by the frozen policy, held by the user and not yet signed
       (``no_role``, 409 ``role_filled``);
    4. the author of the version (``created_by``, who uploaded the artifact) may not
       take an independent role: only the owner's attestation (``ATTESTING_ROLES``)
       is open to them (``sod_registrant``, rule ``author_not_independent``).
       Whoever only requested the job that produced a version (``requested_by``) is
       not its author: a mitigation the owner asked for is the owner's to attest;
    5. a policy with ``independent_validator`` refuses a validator on the model's
       owning team (``sod_not_independent``).

    ``filled`` (role → valid sign-off) may be passed by a caller that has already
    read, or locked, the review's valid sign-offs.
    """
    version = review.version
    if review.pk is None or review.state != S.IN_REVIEW or review.policy is None:
        state = review.state if review.pk else S.DRAFT
        return None, conflict("not_in_review", f"{version} is not in review.", state=state)
    if filled is None:
        filled = {s.role: s for s in review.signoffs.filter(valid=True)}
    held = next((s.role for s in filled.values() if s.signer_id == user.pk), None)
    if held is not None:
        return None, _refusal(
            "sod_two_roles",
            f"You already signed this review as {held}; one person cannot hold two roles.",
            rule="one_person_one_role",
            held_role=held,
        )
    mine = roles_of(user=user, version=version)
    if role is not None:
        return role, _role_refusal(user=user, review=review, role=role, mine=mine, filled=filled)
    required = list(review.policy.required_roles)
    candidates = [r for r in required if r in mine]
    if not candidates:
        return None, _refusal(
            "no_role",
            "You hold none of the roles this review needs "
            f"({', '.join(_role_label(r) for r in required)}).",
            needed=[r for r in required if r not in filled],
            your_roles=mine,
        )
    open_roles = [r for r in candidates if r not in filled]
    if not open_roles:
        return None, _role_refusal(
            user=user, review=review, role=candidates[0], mine=mine, filled=filled
        )
    first_refusal = None
    for candidate in open_roles:
        refusal = _role_refusal(user=user, review=review, role=candidate, mine=mine, filled=filled)
        if refusal is None:
            return candidate, None
        first_refusal = first_refusal or refusal
    return None, first_refusal


def signing_refusal(*, user: Any, review: Review, role: str | None = None) -> DomainError | None:
    """Why ``user`` may not sign ``review`` (as ``role``), or None: see ``signing_choice``."""
    return signing_choice(user=user, review=review, role=role)[1]


# --------------------------------------------------------------------------- sensitive inputs


def model_sensitive_attributes(*, model: Any) -> list[str]:
    """The sensitive attributes of a model: every column its fairness audits named."""
    names: set[str] = set()
    audited = FairnessAudit.objects.filter(version__registered_model=model)
    for columns in audited.values_list("sensitive_columns", flat=True):
        names.update(str(c) for c in columns or [])
    return sorted(names)


def sensitive_inputs(*, version: ModelVersion) -> list[str]:
    """The inputs of ``version`` (signature order) that are sensitive attributes of its
    model: it reads them at prediction time, so its decisions depend on them directly."""
    sensitive = set(model_sensitive_attributes(model=version.registered_model))
    return [name for name in version.feature_names if name in sensitive]


def sensitive_inputs_notice(*, version: ModelVersion, inputs: list[str]) -> str:
    """The plain-words warning shown wherever the version is judged."""
    names = " and ".join([", ".join(inputs[:-1]), inputs[-1]] if len(inputs) > 1 else inputs)
    what, role, them = (
        ("attribute", "an input", "it") if len(inputs) == 1 else ("attributes", "inputs", "them")
    )
    return (
        f"v{version.number} uses the sensitive {what} {names} as {role} at prediction "
        f"time: every prediction reads {them}, so its decisions depend on {them} directly "
        f"and callers must send {them}. Using a protected characteristic in a decision "
        f"(credit, employment, insurance, ...) is restricted by law in many places: "
        f"compliance must know and agree before it is deployed."
    )


# --------------------------------------------------------------------------- checklist


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
    if policy.sensitive_inputs_acknowledged_by:
        items.append(_acknowledgement_item(review, policy.sensitive_inputs_acknowledged_by, valid))
    return items


def _acknowledgement_item(review: Review, role: str, valid: dict[str, SignOff]) -> dict[str, Any]:
    """Met when the version uses no sensitive attribute at prediction time, or when the
    named role's valid sign-off acknowledged every one it uses."""
    used = sensitive_inputs(version=review.version)
    signoff = valid.get(role)
    unacknowledged = (
        [c for c in used if c not in set(signoff.acknowledged_sensitive_inputs)]
        if signoff
        else used
    )
    if not used:
        met, why = True, "No sensitive attribute is an input of this version."
    elif not unacknowledged:
        met, why = (
            True,
            (
                f"{signoff.signer.get_username()} ({_role_label(role)}) acknowledged that it "
                f"uses {', '.join(used)} at prediction time."
            ),
        )
    else:
        met, why = (
            False,
            (
                f"It uses {', '.join(used)} at prediction time; the {_role_label(role)} has not "
                f"acknowledged {', '.join(unacknowledged)} yet."
            ),
        )
    return {"requirement": "acknowledgement:sensitive_inputs", "met": met, "why": why}


def waiting_for(*, user: Any) -> QuerySet[Review]:
    """Reviews in review that ``user`` may sign now (``signing_choice`` finds a role)."""
    candidates = (
        Review.objects.visible_to(user, "view")
        .filter(state=S.IN_REVIEW)
        .select_related("version__registered_model__team", "policy")
        .prefetch_related(
            Prefetch("signoffs", queryset=SignOff.objects.filter(valid=True), to_attr="live")
        )
    )
    pks = []
    for review in candidates[:200]:
        filled = {s.role: s for s in review.live}
        role, _refusal = signing_choice(user=user, review=review, filled=filled)
        if role is not None and _refusal is None:
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
