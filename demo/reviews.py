"""Demo state for the governance app, loaded by `manage.py demo` (idempotent).

Diabetes (medium risk): the latest version is reviewed by the owner and the
validator, approved and deployed to ``production``.

Credit (high risk), the governed path end to end:

- v1, a scorecard without the columns whose records carry group gaps, passes every
  gate (evaluation, fairness audit, model card, the three sign-offs) and is deployed
  to ``production``;
- v2, trained on every applicant column, scores better but fails its fairness audit
  (the demo's credit data is biased on purpose, see ``demo/samples.py``); the
  compliance officer rejects it, quoting the failed rules;
- v3 is the mitigation of v2's failed audit, started by the owner: a retraining run
  (strategy ``fairness_mitigation``, its author) fits it on the training data, then
  it is evaluated and audited on the held-out rows. It passes, but reads ``sex`` and
  ``age_band`` at prediction time. The owner (who only requested it) and the
  validator have signed; it waits for the compliance officer, who approves it only
  by acknowledging that use.

The demo loader knows no passwords, so its sign-offs are recorded with
``reviews.signoff_record`` (the step after the e-signature check) and say so in
their comment; every sign-off given in the UI goes through ``signoff_create``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from common.jobs import job_claim
from governance import fairness_audits, model_cards, policies, reviews, selectors
from governance.choices import ReviewState
from governance.models import FairnessAudit, Review
from governance.tasks import heavy_fairness_audit
from lifecycle import retraining
from lifecycle.models import Evaluation, RetrainingRun
from lifecycle.tasks import heavy_evaluate, heavy_retrain
from registry import services as registry_services
from registry.choices import VersionStatus
from registry.models import ModelVersion, RegistrationJob

NOTE = "[demo data: recorded by the demo loader without an e-signature]"


def _evidence_ok(version: Any, kinds: list[str]) -> bool:
    latest = selectors.latest_evidence(version=version)
    return all(kind in latest and latest[kind].passed is not False for kind in kinds)


SIGNERS = {
    "owner": ("reviewed", "Business case and data lineage confirmed."),
    "validator": ("validated", "Back-test and evidence reproduced."),
    "compliance": ("approved_for_deployment", "Regulatory review done."),
}


def _sign(users: dict[str, Any], version: Any, role: str, **kwargs: Any) -> None:
    meaning, comment = SIGNERS[role]
    kwargs.setdefault("comment", comment)
    kwargs["comment"] = f"{kwargs['comment']} {NOTE}"
    reviews.signoff_record(
        actor=users[role],
        version=version,
        role=role,
        decision=kwargs.pop("decision", "approve"),
        meaning=meaning,
        **kwargs,
    )


def _missing(review: Review) -> list[str]:
    return [i["requirement"] for i in selectors.review_checklist(review=review) if not i["met"]]


def _deploy(command: Any, users: dict[str, Any], version: Any) -> None:
    review = Review.objects.get(version=version)
    if review.state == ReviewState.APPROVED:
        registry_services.alias_set(
            actor=users["owner"],
            model=version.registered_model,
            name="production",
            version_number=version.number,
        )
        command.stdout.write(f"  governance: {version} approved and deployed to production")
    else:
        command.stdout.write(
            f"  governance: {version} in review, missing {', '.join(_missing(review))}"
        )


def _review(command: Any, users: dict[str, Any], model: Any, *, signers: list[str]) -> None:
    """Submit the best ready version and record the given sign-offs; deploy if approved."""
    if Review.objects.filter(version__registered_model=model).exists():
        return
    policy = policies.policy_current(risk_tier=model.risk_tier)
    ready = list(model.versions.filter(status=VersionStatus.READY).order_by("-number"))
    if not ready:
        return
    passing = next((v for v in ready if _evidence_ok(v, policy.required_evidence)), None)
    version = passing or ready[0]
    reviews.review_submit(actor=users["owner"], version=version)
    for role in list(policy.required_roles) if passing else signers:
        if role in policy.required_roles:
            _sign(users, version, role)
    _deploy(command, users, version)


# --------------------------------------------------------------------------- credit


def _credit_in_production(command: Any, users: dict[str, Any], v1: Any) -> None:
    if Review.objects.filter(version=v1).exists():
        return
    reviews.review_submit(actor=users["owner"], version=v1)
    for role in ("owner", "validator", "compliance"):
        _sign(users, v1, role)
    _deploy(command, users, v1)


def _credit_rejected(command: Any, users: dict[str, Any], v2: Any) -> None:
    if Review.objects.filter(version=v2).exists():
        return
    audit = selectors.latest_audit(version=v2)
    reviews.review_submit(actor=users["owner"], version=v2)
    why = fairness_audits.audit_summary(audit) if audit else "no fairness audit"
    _sign(
        users,
        v2,
        "compliance",
        decision="reject",
        comment=f"Not for lending decisions: its fairness audit failed ({why}).",
    )
    command.stdout.write(f"  governance: {v2} rejected: its fairness audit failed")


def _run_in_process(model: Any, task: Any, pk: Any) -> None:
    """Run a queued job now: the worker may not be running yet (its copy then finds
    the job done and does nothing)."""
    if model.objects.filter(pk=pk, status="queued").exists():
        task.run(pk)


def _credit_mitigation(command: Any, users: dict[str, Any], v2: Any) -> ModelVersion | None:
    """The owner mitigates v2's failed audit (a retraining run, as from the version
    page); the candidate is validated, evaluated and audited as the workers would,
    then given its model card."""
    run = (
        RetrainingRun.objects.filter(parent=v2, strategy="fairness_mitigation")
        .select_related("version")
        .first()
    )
    if run is None:
        audit = selectors.latest_audit(version=v2)
        if audit is None or audit.passed is not False:
            return None
        run = retraining.fairness_mitigation_request(
            actor=users["owner"],
            audit=audit,
            method="threshold_optimizer",
            constraint="demographic_parity",
            reason="v2 failed its fairness audit by sex and age band.",
        )
        _run_in_process(RetrainingRun, heavy_retrain, run.pk)
        run = RetrainingRun.objects.select_related("version").get(pk=run.pk)
    candidate = run.version
    if candidate is None:
        raise RuntimeError(f"demo mitigation failed: {run.error}")
    if candidate.status == VersionStatus.PENDING:
        with transaction.atomic():
            job = job_claim(RegistrationJob, candidate.registration_job.pk)
        if job is not None:
            candidate = registry_services.model_version_validate(job=job)
    if candidate.status != VersionStatus.READY:
        raise RuntimeError(f"demo mitigation candidate failed: {candidate.status_reason}")
    # Normally the "ready" event runs the run's follow-up (review per the policy, the
    # evaluation, the re-audit); it is delivered after a commit that a caller's
    # transaction may still hold, so ask for it here (idempotent).
    retraining.retraining_follow_up(version_id=candidate.pk)
    for audit in FairnessAudit.objects.filter(version=candidate):
        _run_in_process(FairnessAudit, heavy_fairness_audit, audit.pk)
    for evaluation in Evaluation.objects.filter(version=candidate):
        _run_in_process(Evaluation, heavy_evaluate, evaluation.pk)
    card, narrative = model_cards.narrative_of(candidate)
    if card is None:
        used = ", ".join(selectors.sensitive_inputs(version=candidate)) or "no sensitive attribute"
        narrative["ethical_considerations"] = (
            f"Per-group decision thresholds (fairlearn's ThresholdOptimizer, demographic "
            f"parity) bring selection rates together, at the price of reading {used} at "
            f"prediction time. Compliance must confirm that this use is lawful for the "
            f"purpose before deployment."
        )
        model_cards.model_card_update(actor=users["owner"], version=candidate, fields=narrative)
    return candidate


def _credit_candidate_in_review(command: Any, users: dict[str, Any], candidate: Any) -> None:
    review = Review.objects.filter(version=candidate).first()
    if review is not None and review.signoffs.exists():
        return
    if review is None:  # the run submits it itself when the champion does not beat it
        reviews.review_submit(actor=users["owner"], version=candidate)
    _sign(
        users,
        candidate,
        "owner",
        comment="Mitigation requested after v2's failed audit; business case confirmed.",
    )
    _sign(users, candidate, "validator")
    review = Review.objects.get(version=candidate)
    command.stdout.write(
        f"  governance: {candidate} (mitigation of v{candidate.parent.number}) in review, "
        f"waiting for {', '.join(_missing(review))}"
    )


def _credit(command: Any, users: dict[str, Any], model: Any) -> None:
    ready = {v.number: v for v in model.versions.filter(status=VersionStatus.READY)}
    if 1 not in ready or 2 not in ready:
        return
    _credit_in_production(command, users, ready[1])
    _credit_rejected(command, users, ready[2])
    candidate = _credit_mitigation(command, users, ready[2])
    if candidate is not None:
        _credit_candidate_in_review(command, users, candidate)


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    """Add governance demo data for the demo ``users`` and ``models`` (credit, diabetes)."""
    _review(command, users, models["diabetes"], signers=["owner", "validator"])
    _credit(command, users, models["credit"])
