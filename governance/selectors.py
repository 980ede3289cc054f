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
from common.links import site_path
from common.models import AuditEvent
from common.permissions import can_globally, get_visible, user_can
from governance import evidence_rules
from governance.choices import (
    ATTESTING_ROLES,
    DECIDED_REVIEW_STATES,
    ReviewState,
    SignOffDecision,
    SignOffMeaning,
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

# Where each evidence kind is shown on the version page (the checklist links there).
EVIDENCE_ANCHORS = {
    "evaluation_report": "panel-evaluation",
    "explainability": "panel-evaluation",
    "fairness_audit": "panel-fairness",
    "model_card": "panel-model-card",
}
# A checklist item's status: passed (met), failed (the evidence failed, or a signer
# decided against), missing (nothing filed, nothing signed, or filed evidence that does
# not count for this review), overridden (failed or missing evidence accepted by the
# policy's ``evidence_override_by`` role with a written justification: it counts as met).
PASSED, FAILED, MISSING, OVERRIDDEN = "passed", "failed", "missing", "overridden"


def _label(kind: str) -> str:
    return kind.replace("_", " ")


def _failed_rules(item: Evidence) -> list[str]:
    """The rules a failed evidence item broke, in words (fairness rules, metric floors)."""
    details = item.details or {}
    rules = []
    for rule in details.get("failed_rules") or []:
        value = rule.get("value")
        shown = "not computable" if value is None else f"{value:.4g}"
        scope = f" on {rule['scope']}" if rule.get("scope") else ""
        rules.append(f"{rule.get('rule')}{scope}: {shown} (threshold {rule.get('threshold')})")
    for failure in details.get("failures") or []:
        value = failure.get("value")
        shown = "not computed" if value is None else f"{value:.4g}"
        rules.append(f"{failure.get('metric')} {shown}: {failure.get('reason')}")
    return rules


def _evidence_item(review: Review, policy: Any, kind: str, item: Evidence | None) -> dict[str, Any]:
    version = review.version
    rules: list[str] = []
    if item is None:
        status, why = MISSING, f"No {_label(kind)} filed."
    elif item.passed is False:
        rules = _failed_rules(item)
        status, why = FAILED, f"Latest {_label(kind)} failed: {item.summary}"
    elif (
        objection := evidence_rules.objection(
            item, policy_answer=kind_thresholds(policy, kind, version.registered_model.task)
        )
    ) is not None:
        status, why = MISSING, objection
    else:
        status, why = PASSED, item.summary or f"{_label(kind)} present"
    anchor = EVIDENCE_ANCHORS.get(kind)
    link = (
        site_path("registry:version-detail", version.registered_model.name, version.number)
        + f"#{anchor}"
        if anchor
        else ""
    )
    return {
        "requirement": f"evidence:{kind}",
        "met": status == PASSED,
        "status": status,
        "why": why,
        "rules": rules,
        "link": link,
        "sha256": item.sha256 if item else None,
    }


def _apply_override(entry: dict[str, Any], signoff: SignOff | None) -> dict[str, Any]:
    """A failed or missing evidence item that the override role's valid approval
    overrode (with a justification) counts as met, and says so."""
    if entry["met"] or signoff is None or signoff.decision != SignOffDecision.APPROVE:
        return entry
    overridden = {o.get("requirement") for o in signoff.overridden_requirements or []}
    if entry["requirement"] not in overridden:
        return entry
    return {
        **entry,
        "met": True,
        "status": OVERRIDDEN,
        "was": entry["status"],
        "why": (
            f"{entry['why'].rstrip('.')}. Overridden by {signoff.signer.get_username()} "
            f"({_role_label(signoff.role)}): {signoff.override_justification}"
        ),
        "justification": signoff.override_justification,
    }


def review_checklist(*, review: Review) -> list[dict[str, Any]]:
    """Each requirement of the frozen policy: passed, failed, missing or overridden, and why.

    Every item has ``requirement``, ``met`` (counts for approval), ``status`` and
    ``why``; evidence items add ``rules`` (what a failed item broke, in words),
    ``link`` (where the version page shows it) and ``sha256``.
    """
    policy = review.policy or policy_current(risk_tier=review.version.registered_model.risk_tier)
    if policy is None:
        return [
            {
                "requirement": "policy",
                "met": False,
                "status": MISSING,
                "why": "No policy for this risk tier.",
            }
        ]
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
            status = MISSING
        elif signoff.decision != SignOffDecision.APPROVE:
            why = f"{signoff.signer.get_username()} decided {signoff.decision}."
            status = FAILED
        else:
            why = f"Approved by {signoff.signer.get_username()} ({signoff.meaning})."
            status = PASSED
        items.append(
            {
                "requirement": f"signoff:{role}",
                "met": status == PASSED,
                "status": status,
                "why": why,
            }
        )
    evidence = latest_evidence(version=review.version)
    overrider = valid.get(policy.evidence_override_by) if policy.evidence_override_by else None
    for kind in policy.required_evidence:
        entry = _evidence_item(review, policy, kind, evidence.get(kind))
        items.append(_apply_override(entry, overrider))
    if policy.sensitive_inputs_acknowledged_by:
        items.append(_acknowledgement_item(review, policy.sensitive_inputs_acknowledged_by, valid))
    return items


# The shortest written justification an override takes (a sentence, not "ok").
OVERRIDE_MIN_CHARS = 20


def approval_refusal(
    *,
    review: Review,
    role: str,
    decision: str,
    meaning: str,
    override_justification: str = "",
    checklist: list[dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], DomainError | None]:
    """Whether an approval "for deployment" in ``role`` may be signed on ``review`` now.

    The one rule: a signer may not say "Approved for deployment" while required
    evidence has failed or is missing (``409 evidence_not_met``, naming each item),
    unless the frozen policy names ``role`` in ``evidence_override_by``, in which
    case the signer overrides those items explicitly with a written justification
    (``400 override_justification_required`` without one). A justification with
    nothing to override is refused (``400 nothing_to_override``).

    Returns the items the approval overrides (recorded on the sign-off) and the refusal.
    Other decisions and meanings ("reviewed", "validated", rejections) are not judged
    here: they do not claim the version may be deployed.
    """
    justification = (override_justification or "").strip()
    if decision != SignOffDecision.APPROVE or meaning != SignOffMeaning.APPROVED_FOR_DEPLOYMENT:
        if justification:
            return [], DomainError(
                "nothing_to_override",
                "An override only goes with an approval for deployment.",
                details={"override_justification": "only with an approval for deployment"},
            )
        return [], None
    if checklist is None:
        checklist = review_checklist(review=review)
    blocking = [
        {"requirement": i["requirement"], "status": i["status"], "why": i["why"]}
        for i in checklist
        if i["requirement"].startswith("evidence:") and not i["met"]
    ]
    if not blocking:
        if justification:
            return [], DomainError(
                "nothing_to_override",
                "Every required evidence item is met: there is nothing to override.",
                details={"override_justification": "nothing to override"},
            )
        return [], None
    policy = review.policy
    listed = "; ".join(
        f"{_label(b['requirement'].split(':', 1)[1])} {b['status']}" for b in blocking
    )
    details: dict[str, Any] = {
        "blocking": blocking,
        "evidence_override_by": policy.evidence_override_by or None,
    }
    if policy.evidence_override_by != role:
        if policy.evidence_override_by:
            how = (
                f"Under {policy} only the {_role_label(policy.evidence_override_by)} may "
                "override it, with a written justification."
            )
        else:
            how = f"{policy} allows no override: file passing evidence first."
        return [], conflict(
            "evidence_not_met",
            f"You may not approve {review.version} for deployment: required evidence is not "
            f"met ({listed}). {how}",
            **details,
        )
    if len(justification) < OVERRIDE_MIN_CHARS:
        return blocking, DomainError(
            "override_justification_required",
            f"Required evidence is not met ({listed}). As the {_role_label(role)} you may "
            f"approve {review.version} for deployment only by overriding it with a written "
            f"justification (at least {OVERRIDE_MIN_CHARS} characters).",
            details={**details, "override_justification": "required"},
        )
    return blocking, None


def deploy_blockers(
    *, review: Review | None, checklist: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What stands between a version and a protected alias: the checklist items that
    are failed or missing (evidence, acknowledgements) and the sign-offs still needed.

    Read by the deploy gate's refusal and by the review panel.
    """
    if review is None or review.pk is None:
        return {"state": "not submitted", "failed": [], "missing": [], "signoffs_needed": []}
    if checklist is None:
        checklist = review_checklist(review=review)
    failed, missing, needed = [], [], []
    for item in checklist:
        if item["met"]:
            continue
        kind, _, name = item["requirement"].partition(":")
        if kind == "signoff":
            needed.append({"role": name, "status": item["status"], "why": item["why"]})
            continue
        row = {
            "requirement": item["requirement"],
            "why": item["why"],
            "rules": item.get("rules", []),
        }
        (failed if item["status"] == FAILED else missing).append(row)
    return {"state": review.state, "failed": failed, "missing": missing, "signoffs_needed": needed}


def deploy_blockers_text(blockers: dict[str, Any]) -> str:
    """The blockers in one sentence: "Failed: fairness audit. Missing: model card. ..."."""

    def names(rows: list[dict[str, Any]]) -> str:
        return ", ".join(_label(r["requirement"].split(":", 1)[1]) for r in rows)

    parts = []
    if blockers["failed"]:
        parts.append(f"Failed: {names(blockers['failed'])}.")
    if blockers["missing"]:
        parts.append(f"Missing: {names(blockers['missing'])}.")
    declined = [r for r in blockers["signoffs_needed"] if r["status"] == FAILED]
    needed = [r for r in blockers["signoffs_needed"] if r["status"] != FAILED]
    if declined:
        roles = ", ".join(_role_label(r["role"]) for r in declined)
        parts.append(f"Declined by: {roles}.")
    if needed and blockers["state"] != S.REJECTED:
        roles = ", ".join(_role_label(r["role"]) for r in needed)
        parts.append(f"Sign-offs still needed: {roles}.")
    if blockers["state"] == S.REJECTED:
        parts.append("The review is rejected: a new version must be registered and reviewed.")
    return " ".join(parts)


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
    return {
        "requirement": "acknowledgement:sensitive_inputs",
        "met": met,
        "status": PASSED if met else MISSING,
        "why": why,
    }


# --------------------------------------------------------------------------- evidence summary

SUMMARY_GATES = (
    ("evaluation_report", "Evaluation"),
    ("fairness_audit", "Fairness audit"),
    ("explainability", "Explainability"),
    ("model_card", "Model card"),
)


def _figures(item: Evidence) -> list[str]:
    """The figures that decided an evidence item, in short."""
    details = item.details or {}
    thresholds = details.get("thresholds") or {}
    figures = []
    metrics = details.get("metrics") or {}
    for name, bounds in thresholds.items():
        if not isinstance(bounds, dict):
            continue
        value = metrics.get(name)
        limit = " ".join(
            f"{'≥' if side == 'min' else '≤'} {bound}"
            for side, bound in bounds.items()
            if side in ("min", "max") and bound is not None
        )
        shown = "—" if value is None else f"{value:.4g}"
        figures.append(f"{name} {shown} (needs {limit})" if limit else f"{name} {shown}")
    figures.extend(_failed_rules(item))
    return figures


def evidence_summary(*, version: ModelVersion) -> list[dict[str, Any]]:
    """Every gate of ``version`` on one screen: status (passed, failed, missing,
    overridden, or info for an item the policy does not require), the figures that
    decided it, and where the details are. Required gates are judged exactly as the
    review checklist judges them (same function)."""
    review = review_get_or_draft(version=version)
    checklist = {i["requirement"]: i for i in review_checklist(review=review)}
    evidence = latest_evidence(version=version)
    page = site_path("registry:version-detail", version.registered_model.name, version.number)
    gates: list[dict[str, Any]] = []
    for kind, title in SUMMARY_GATES:
        item = evidence.get(kind)
        judged = checklist.get(f"evidence:{kind}")
        anchor = EVIDENCE_ANCHORS.get(kind, "")
        if judged is not None:
            status, why = judged["status"], judged["why"]
        elif item is None:
            status, why = "info", f"No {_label(kind)} filed (not required by the policy)."
        else:
            status = {True: PASSED, False: FAILED}.get(item.passed, "info")  # type: ignore[arg-type]
            why = item.summary
        gates.append(
            {
                "id": kind,
                "title": title,
                "required": judged is not None,
                "status": status,
                "why": why,
                "figures": _figures(item) if item else [],
                "link": f"{page}#{anchor}" if anchor else "",
            }
        )
    signoffs = [i for k, i in checklist.items() if k.startswith("signoff:")]
    signed = [i for i in signoffs if i["met"]]
    if review.pk is None or review.state == S.DRAFT:
        review_status, review_why = MISSING, "Not submitted for review."
    elif review.state == S.APPROVED:
        expired = review.is_expired()
        review_status = FAILED if expired else PASSED
        review_why = (
            f"Approved{', expired' if expired else ''} until "
            f"{review.approved_until:%Y-%m-%d} under {review.policy}."
        )
    elif review.state in (S.REJECTED, S.CHANGES_REQUESTED):
        review_status, review_why = FAILED, f"{review.get_state_display()}."
    else:
        review_status, review_why = MISSING, f"In review under {review.policy}."
    waiting = [i["requirement"].split(":", 1)[1] for i in signoffs if not i["met"]]
    gates.append(
        {
            "id": "review",
            "title": "Review",
            "required": True,
            "status": review_status,
            "why": review_why,
            "figures": [f"{len(signed)} of {len(signoffs)} sign-offs"]
            + ([f"waiting for {', '.join(_role_label(r) for r in waiting)}"] if waiting else []),
            "link": site_path("governance:review", version.registered_model.name, version.number),
        }
    )
    used = sensitive_inputs(version=version)
    acknowledgement = checklist.get("acknowledgement:sensitive_inputs")
    if not used:
        status, why = PASSED, "No sensitive attribute is an input."
    elif acknowledgement is not None:
        status, why = acknowledgement["status"], acknowledgement["why"]
    else:
        status, why = "info", f"Reads {', '.join(used)} at prediction time."
    gates.append(
        {
            "id": "sensitive_inputs",
            "title": "Sensitive inputs",
            "required": acknowledgement is not None,
            "status": status,
            "why": why,
            "figures": [f"inputs: {', '.join(used)}"] if used else [],
            "link": f"{page}#panel-model-card",
        }
    )
    return gates


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
