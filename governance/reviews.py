"""The review workflow: submission, e-signed sign-offs, evidence, the deploy gate, expiry.

One service owns ``Review.state`` (``_transition``): it checks the allowed
transitions table (``governance.choices.REVIEW_TRANSITIONS``), expects the row
to be locked by the caller (``select_for_update``), appends a
``ReviewTransition`` row and an audit event, and publishes
``governance.review.<state>`` after commit.

Lock order everywhere: the policy a submission freezes, the review row, then
sign-offs/evidence, then (last) the audit chain head inside ``audit_record``.

``SignOff.valid`` has one writer too (``_signoff_invalidate``): a sign-off is
voided when the version is resubmitted or evidence it signed changes.

Roles (see README "Governance"):
- owner: the model's owner, or anyone holding "manage" on the model;
- validator: member of GOVERNANCE_VALIDATOR_GROUP holding "approve" on the model;
- compliance: member of GOVERNANCE_COMPLIANCE_GROUP holding "approve" on the model.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.audit import SystemActor, audit_record, snapshot
from common.errors import DomainError, conflict
from common.events import publish_event
from common.evidence import EvidenceItem
from common.links import absolute_url
from common.permissions import require
from governance.choices import (
    REVIEW_TRANSITIONS,
    ReviewState,
    SignOffDecision,
    SignOffMeaning,
    SignOffRole,
)
from governance.models import ApprovalPolicy, Evidence, Review, ReviewTransition, SignOff
from governance.policies import policy_current
from governance.selectors import (
    approval_refusal,
    deploy_blockers,
    deploy_blockers_text,
    latest_evidence,
    review_checklist,
    sensitive_inputs,
    signing_choice,
)
from registry import selectors as registry_selectors
from registry.choices import VersionStatus
from registry.models import ModelVersion

logger = logging.getLogger(__name__)
S = ReviewState
REVIEW_FIELDS = ("state", "policy", "submitted_at", "decided_at", "approved_until")
SIGNOFF_FIELDS = (
    "role",
    "decision",
    "meaning",
    "comment",
    "evidence_sha256",
    "acknowledged_sensitive_inputs",
    "overridden_requirements",
    "override_justification",
    "valid",
)


# --- transitions ------------------------------------------------------------------


def _actor_name(actor: Any) -> str:
    return str(actor) if isinstance(actor, SystemActor) else actor.get_username()


def _transition(review: Review, *, to: str, actor: Any, reason: str = "") -> None:
    """The one writer of ``review.state``; the caller holds the row lock."""
    if to not in REVIEW_TRANSITIONS[review.state]:
        raise conflict(
            "invalid_transition",
            f"A review that is {review.state} cannot become {to}.",
            state=review.state,
            allowed=sorted(REVIEW_TRANSITIONS[review.state]),
        )
    before = snapshot(review, REVIEW_FIELDS)
    from_state = review.state
    review.state = to
    now = timezone.now()
    if to == S.APPROVED:
        review.decided_at = now
        review.approved_until = now + review.policy.validity
        review.expiry_warned_at = review.expired_notified_at = None
    elif to == S.REJECTED:
        review.decided_at = now
    elif to in (S.IN_REVIEW, S.DRAFT, S.CHANGES_REQUESTED):
        review.decided_at = None
        review.approved_until = None
    review.save()
    ReviewTransition.objects.create(
        review=review, from_state=from_state, to_state=to, actor=_actor_name(actor), reason=reason
    )
    audit_record(
        actor=actor,
        action=f"governance.review.{to}",
        obj=review,
        before=before,
        after={**snapshot(review, REVIEW_FIELDS), "reason": reason},
    )
    version = review.version
    publish_event(
        f"governance.review.{to}",
        {
            "model": version.registered_model.name,
            "version": version.number,
            "version_id": version.pk,
            "review_id": review.pk,
            "from": from_state,
            "state": to,
            "reason": reason,
        },
    )


def _locked_review(version: ModelVersion) -> Review | None:
    # Lock the review row only (of=self): the joined policy is nullable, and
    # locking the model row here would invert alias_set's lock order.
    return (
        Review.objects.select_for_update(of=("self",))
        .select_related("policy", "version__registered_model")
        .filter(version=version)
        .first()
    )


@transaction.atomic
def review_submit(*, actor: Any, version: ModelVersion) -> Review:
    """Submit a ready version for review under its tier's current policy (frozen here)."""
    require(actor, "register", version)
    if version.status != VersionStatus.READY:
        raise conflict(
            "version_not_ready",
            f"{version} is {version.status}; only a ready version can be reviewed.",
            version_status=version.status,
        )
    policy = policy_current(risk_tier=version.registered_model.risk_tier)
    if policy is None:
        raise conflict("no_policy", "No approval policy exists for this risk tier.")
    # Locked until commit, so an administrator's policy_update (same lock) cannot
    # change the policy between our reading it and the review freezing it. The
    # foreign key alone does not protect it: PostgreSQL checks the (deferred) key
    # only at commit, when our audit event already holds the chain head that
    # policy_update waits for, and the two transactions deadlock.
    policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
    review = _locked_review(version)
    if review is None:
        try:
            with transaction.atomic():
                review = Review.objects.create(version=version)
        except IntegrityError:  # a concurrent submit created it
            pass
        review = _locked_review(version)
    assert review is not None
    if review.state == S.CHANGES_REQUESTED:
        _transition(review, to=S.DRAFT, actor=actor, reason="resubmitted")
    if review.state != S.DRAFT:
        raise conflict(
            "already_submitted",
            f"The review of {version} is already {review.state}.",
            state=review.state,
        )
    # Earlier sign-offs judged an earlier submission.
    for signoff in review.signoffs.filter(valid=True):
        _signoff_invalidate(signoff, actor=actor, reason="resubmitted")
    review.policy = policy
    review.submitted_by = None if isinstance(actor, SystemActor) else actor
    review.submitted_at = timezone.now()
    review.save()
    _transition(review, to=S.IN_REVIEW, actor=actor, reason=f"policy {policy}")
    _notify_signers(review)
    _maybe_approve(review, actor=actor)
    return review


def _notify_signers(review: Review) -> None:
    """Email the people whose sign-off is needed, after commit."""
    from django.contrib.auth import get_user_model
    from django.core.mail import send_mail

    version = review.version
    filled = {s.role: s for s in review.signoffs.filter(valid=True)}
    needed = set(review.policy.required_roles) - set(filled)
    recipients = []
    for user in get_user_model().objects.filter(is_active=True).exclude(email=""):
        if signing_choice(user=user, review=review, filled=filled)[1] is None:
            recipients.append(user.email)
    if not recipients:
        return
    subject = f"[ModelGate] Sign-off needed: {version}"
    body = (
        f"{version} ({version.registered_model.risk_tier} risk) is in review under "
        f"{review.policy}. Roles still needed: {', '.join(sorted(needed))}.\n"
        f"{absolute_url('governance:review', version.registered_model.name, version.number)}\n"
    )
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, sorted(set(recipients)))
    )


# --- approval expiry ---------------------------------------------------------------

EXPIRY_SWEEPER = SystemActor("governance.beat")


def approval_expiry_sweep(*, now: Any = None) -> int:
    """Beat: tell a model's owner and team once when its approval is about to expire
    (``GOVERNANCE_EXPIRY_WARNING_DAYS`` ahead) and once when it has expired.

    Each notice is claimed with a conditional UPDATE, so two beats never send it twice;
    the notice (audit event, ``governance.review.expiring|expired`` event for the
    webhooks, email after commit) commits with the claim. Returns how many were sent.
    """
    now = now or timezone.now()
    warn_until = now + timedelta(days=settings.GOVERNANCE_EXPIRY_WARNING_DAYS)
    stages = (
        ("expired", "expired_notified_at", {"approved_until__lte": now}),
        (
            "expiring",
            "expiry_warned_at",
            {"approved_until__gt": now, "approved_until__lte": warn_until},
        ),
    )
    sent = 0
    for stage, field, window in stages:
        unsent = {"state": S.APPROVED, f"{field}__isnull": True, **window}
        for pk in list(Review.objects.filter(**unsent).values_list("pk", flat=True)[:500]):
            with transaction.atomic():
                if not Review.objects.filter(pk=pk, **unsent).update(**{field: now}):
                    continue  # another beat, or a new approval, got there first
                review = Review.objects.select_related(
                    "version__registered_model__owner", "version__registered_model__team"
                ).get(pk=pk)
                _announce_expiry(review, stage)
                sent += 1
    return sent


def _announce_expiry(review: Review, stage: str) -> None:
    from django.core.mail import send_mail

    from registry.models import Alias

    version = review.version
    model = version.registered_model
    aliases = sorted(Alias.objects.filter(version=version).values_list("name", flat=True))
    until = review.approved_until
    audit_record(
        actor=EXPIRY_SWEEPER,
        action=f"governance.review.{stage}",
        obj=review,
        after={"approved_until": until, "aliases": aliases},
    )
    publish_event(
        f"governance.review.{stage}",
        {
            "model": model.name,
            "version": version.number,
            "version_id": version.pk,
            "review_id": review.pk,
            "state": review.state,
            "approved_until": until.isoformat() if until else None,
            "aliases": aliases,
        },
    )
    recipients = registry_selectors.model_contacts(model=model)
    if not recipients:
        return
    served = f" It is served as @{', @'.join(aliases)}." if aliases else ""
    when = f"{until:%Y-%m-%d %H:%M} UTC" if until else "now"
    subject = f"[ModelGate] Approval {'expired' if stage == 'expired' else 'expiring'}: {version}"
    body = (
        f"The approval of {version} ({model.risk_tier} risk) "
        f"{'expired on' if stage == 'expired' else 'expires on'} {when}.{served}\n"
        "An expired version cannot be moved to a protected alias. To renew the approval, "
        "record fresh evidence (e.g. a new evaluation): the version goes back to review "
        "for new sign-offs.\n"
        f"{absolute_url('governance:review', model.name, version.number)}\n"
    )
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, sorted(recipients))
    )


def _all_met(review: Review) -> bool:
    return all(item["met"] for item in review_checklist(review=review))


def _maybe_approve(review: Review, *, actor: Any) -> None:
    if review.state == S.IN_REVIEW and _all_met(review):
        _transition(
            review, to=S.APPROVED, actor=actor, reason="every required role and evidence met"
        )


# --- sign-offs -----------------------------------------------------------------------


def _refuse(code: str, message: str, status: int = 403, **details: Any) -> DomainError:
    return DomainError(code, message, details=details, status=status)


def _signoff_invalidate(signoff: SignOff, *, actor: Any, reason: str) -> bool:
    """The one writer of ``SignOff.valid``: True to False, never back (signing again
    makes a new row). Returns whether this call voided the sign-off.

    The caller holds the review's row lock. The UPDATE is conditional on the
    expected old value, so a sign-off is voided, and audited, once.
    """
    now = timezone.now()
    voided = SignOff.objects.filter(pk=signoff.pk, valid=True).update(
        valid=False, invalidated_at=now, invalidated_reason=reason
    )
    if not voided:
        return False
    signoff.valid, signoff.invalidated_at, signoff.invalidated_reason = False, now, reason
    audit_record(
        actor=actor,
        action="governance.signoff.invalidated",
        obj=signoff,
        before={"valid": True},
        after={"valid": False, "reason": reason},
    )
    return True


def signoff_create(
    *,
    actor: Any,
    version: ModelVersion,
    password: str,
    decision: str,
    meaning: str,
    comment: str = "",
    role: str | None = None,
    via_api: bool = False,
    acknowledge_sensitive_inputs: bool = False,
    override_justification: str = "",
) -> SignOff:
    """An electronic signature: password re-entered, every SoD rule checked, evidence hashed.

    A wrong password is refused before anything is read or written. It is
    checked with ``check_password``, not ``authenticate``: a signature is not
    a login, so django-axes neither counts it nor locks the account out; the
    refusal is logged instead.
    """
    # The tier of the frozen policy, not the model's tier now: a tier lowered after
    # submission must not open the API channel to a review frozen under a higher one.
    tier = (
        Review.objects.filter(version=version, policy__isnull=False)
        .values_list("policy__risk_tier", flat=True)
        .first()
    ) or version.registered_model.risk_tier
    if via_api and tier not in settings.GOVERNANCE_API_SIGNOFF_TIERS:
        raise _refuse(
            "ui_only",
            f"Sign-offs for {tier}-risk reviews are given in the web UI only.",
            risk_tier=tier,
        )
    if not actor.check_password(password or ""):
        logger.warning("wrong signature password by %s on %s", actor.get_username(), version)
        raise _refuse("wrong_password", "The password is wrong; nothing was signed.", status=403)
    return signoff_record(
        actor=actor,
        version=version,
        decision=decision,
        meaning=meaning,
        comment=comment,
        role=role,
        acknowledge_sensitive_inputs=acknowledge_sensitive_inputs,
        override_justification=override_justification,
    )


@transaction.atomic
def signoff_record(
    *,
    actor: Any,
    version: ModelVersion,
    decision: str,
    meaning: str,
    comment: str = "",
    role: str | None = None,
    acknowledge_sensitive_inputs: bool = False,
    override_justification: str = "",
) -> SignOff:
    """Record a sign-off whose signature was verified by the caller (``signoff_create``).

    Only ``signoff_create`` and the demo loader (which knows no passwords and
    says so in the comment) call this. Who may sign, and in which role, is decided
    by ``governance.selectors.signing_choice`` alone, under the review's row lock.

    When the version uses sensitive attributes at prediction time and the policy
    names the signer's role in ``sensitive_inputs_acknowledged_by``, an approval
    must acknowledge them (``acknowledge_sensitive_inputs``); the acknowledged
    columns are recorded on the sign-off.

    An approval "for deployment" while required evidence failed or is missing is
    refused, or, where the frozen policy names the signer's role in
    ``evidence_override_by``, needs ``override_justification``: the overridden items
    and the justification are recorded on the sign-off and in its audit event
    (``governance.selectors.approval_refusal``).
    """
    if decision not in SignOffDecision.values:
        raise DomainError("invalid", "Unknown decision.", details={"decision": decision})
    if meaning not in SignOffMeaning.values:
        raise DomainError("invalid", "Unknown meaning.", details={"meaning": meaning})
    review = _locked_review(version)
    if review is None:
        raise conflict("not_in_review", f"{version} is not in review.", state=S.DRAFT)
    model = version.registered_model
    # Sign-off writers all hold the review lock; these rows are locked too so that
    # a concurrent voiding waits for this signature (lock order: review, sign-offs).
    filled = {s.role: s for s in review.signoffs.filter(valid=True).select_for_update()}
    role, refusal = signing_choice(user=actor, review=review, role=role, filled=filled)
    if refusal is not None:
        raise refusal
    assert role is not None
    overridden, refusal = approval_refusal(
        review=review,
        role=role,
        decision=decision,
        meaning=meaning,
        override_justification=override_justification,
    )
    if refusal is not None:
        raise refusal
    used = sensitive_inputs(version=version)
    if (
        used
        and decision == SignOffDecision.APPROVE
        and role == review.policy.sensitive_inputs_acknowledged_by
        and not acknowledge_sensitive_inputs
    ):
        raise DomainError(
            "acknowledgement_required",
            f"{version} uses the sensitive attributes {', '.join(used)} at prediction time; "
            f"as the {SignOffRole(role).label.lower()} you approve it only by acknowledging "
            "that.",
            details={"acknowledge_sensitive_inputs": "required", "sensitive_inputs": used},
        )
    signed = {kind: item.sha256 for kind, item in latest_evidence(version=version).items()}
    try:
        with transaction.atomic():
            signoff = SignOff.objects.create(
                review=review,
                signer=actor,
                role=role,
                decision=decision,
                meaning=meaning,
                comment=comment,
                evidence_sha256=signed,
                acknowledged_sensitive_inputs=used if acknowledge_sensitive_inputs else [],
                overridden_requirements=overridden,
                override_justification=override_justification.strip() if overridden else "",
            )
    except IntegrityError:
        raise conflict("role_filled", f"The {role} has already signed.", role=role) from None
    audit_record(
        actor=actor,
        action="governance.signoff.created",
        obj=signoff,
        after=snapshot(signoff, SIGNOFF_FIELDS),
    )
    publish_event(
        "governance.signoff.created",
        {
            "model": model.name,
            "version": version.number,
            "role": role,
            "decision": decision,
            "signer": actor.get_username(),
        },
    )
    if decision == SignOffDecision.REJECT:
        _transition(review, to=S.REJECTED, actor=actor, reason=comment or f"rejected by {role}")
    elif decision == SignOffDecision.REQUEST_CHANGES:
        _transition(
            review, to=S.CHANGES_REQUESTED, actor=actor, reason=comment or "changes requested"
        )
    else:
        _maybe_approve(review, actor=actor)
    return signoff


# --- evidence -------------------------------------------------------------------------


@transaction.atomic  # joins the producer's transaction; its own when called alone
def evidence_record(*, actor: Any, item: EvidenceItem) -> Evidence:
    """Evidence recorder (common.evidence), inside the producer's transaction.

    A new item of a kind whose digest differs from what a valid sign-off
    signed voids that sign-off; an approved review goes back to review.
    """
    version = ModelVersion.objects.select_related("registered_model").get(pk=item.version_id)
    review = _locked_review(version)
    evidence = Evidence.objects.create(
        version=version,
        kind=item.kind,
        sha256=item.sha256,
        passed=item.passed,
        summary=item.summary[:2000],
        source=item.source[:200],
        details=item.details,
    )
    audit_record(
        actor=actor,
        action="governance.evidence.filed",
        obj=evidence,
        after=snapshot(evidence, ("kind", "sha256", "passed", "source")),
    )
    if review is None or review.state not in (S.IN_REVIEW, S.APPROVED):
        return evidence
    required = set(review.policy.required_evidence)
    voided = []
    for signoff in review.signoffs.select_for_update().filter(valid=True):
        signed = signoff.evidence_sha256.get(item.kind)
        if signed == item.sha256 or (signed is None and item.kind not in required):
            continue
        reason = f"{item.kind} changed after signing ({item.sha256[:12]})"
        if _signoff_invalidate(signoff, actor=actor, reason=reason):
            voided.append(signoff.role)
    if voided and review.state == S.APPROVED:
        _transition(
            review,
            to=S.IN_REVIEW,
            actor=actor,
            reason=f"{item.kind} changed after signing; sign-offs voided: {', '.join(voided)}",
        )
    _maybe_approve(review, actor=actor)
    return evidence


# --- deploy gate ------------------------------------------------------------------------


def deploy_gate(*, actor: Any, alias_name: str, version: ModelVersion) -> None:
    """Alias gate (registry.gates): a protected alias takes approved, unexpired versions only.

    The deploy right itself is checked by ``alias_set`` before the gates run.
    """
    review = Review.objects.filter(version=version).select_related("policy").first()
    base = {"alias": alias_name, "version": version.number}
    if review is None or review.state != S.APPROVED:
        state = review.state if review else "not submitted"
        blockers = deploy_blockers(review=review)
        what = deploy_blockers_text(blockers)
        if review is None or review.state in (S.DRAFT, S.CHANGES_REQUESTED):
            what = f"Submit it for review first. {what}".strip()
        raise DomainError(
            "not_approved",
            f"{version} cannot go to {alias_name}: it is not approved (review: {state}). {what}"
            if what
            else f"{version} cannot go to {alias_name}: it is not approved (review: {state}).",
            details={
                **base,
                "requirement": "approved_review",
                "review_state": state,
                "failed": blockers["failed"],
                "missing": blockers["missing"],
                "signoffs_needed": blockers["signoffs_needed"],
            },
            status=409,
        )
    if review.is_expired():
        raise DomainError(
            "approval_expired",
            f"{version} cannot go to {alias_name}: its approval expired on "
            f"{review.approved_until:%Y-%m-%d %H:%M} UTC.",
            details={
                **base,
                "requirement": "unexpired_approval",
                "approved_until": review.approved_until.isoformat(),
            },
            status=409,
        )
