"""Demo state for the governance app, loaded by `manage.py demo` (idempotent).

Credit (high risk): the best version whose evidence passes is reviewed by the
owner, the validator and the compliance officer, approved and deployed to
``production``. Diabetes (medium risk): the latest version is in review,
signed by the owner and waiting for the validator.

The demo loader knows no passwords, so its sign-offs are recorded with
``reviews.signoff_record`` (the step after the e-signature check) and say so in
their comment; every sign-off given in the UI goes through ``signoff_create``.
"""

from __future__ import annotations

from typing import Any

from common.audit import SystemActor
from governance import model_cards, reviews
from governance.models import Review, ReviewState
from registry import services as registry_services
from registry.choices import VersionStatus

DEMO = SystemActor("demo")
NOTE = "[demo data: recorded by the demo loader without an e-signature]"


def _evidence_ok(version: Any, kinds: list[str]) -> bool:
    latest = reviews.latest_evidence(version=version)
    return all(kind in latest and latest[kind].passed is not False for kind in kinds)


def _approve_credit(command: Any, users: dict[str, Any], model: Any) -> None:
    if Review.objects.filter(version__registered_model=model).exists():
        return
    policy = reviews.policy_current(risk_tier=model.risk_tier)
    ready = model.versions.filter(status=VersionStatus.READY).order_by("-number")
    others = [k for k in policy.required_evidence if k != "model_card"]
    candidate = next((v for v in ready if _evidence_ok(v, others)), None)
    if candidate is None:
        command.stdout.write("  governance: no credit version passes its evidence; no approval")
        return
    if not _evidence_ok(candidate, ["model_card"]):
        latest = ready.first()
        _, narrative = model_cards.narrative_of(latest)
        model_cards.model_card_update(actor=users["owner"], version=candidate, fields=narrative)
    reviews.review_submit(actor=users["owner"], version=candidate)
    for username, meaning, comment in (
        ("owner", "reviewed", "Business case and data lineage confirmed."),
        ("validator", "validated", "Back-test and fairness audit reproduced."),
        ("compliance", "approved_for_deployment", "Fair-lending review done."),
    ):
        reviews.signoff_record(
            actor=users[username],
            version=candidate,
            decision="approve",
            meaning=meaning,
            comment=f"{comment} {NOTE}",
        )
    review = Review.objects.get(version=candidate)
    if review.state == ReviewState.APPROVED:
        registry_services.alias_set(
            actor=users["owner"], model=model, name="production", version_number=candidate.number
        )
        command.stdout.write(f"  governance: {candidate} approved and deployed to production")


def _diabetes_waiting(command: Any, users: dict[str, Any], model: Any) -> None:
    latest = model.versions.filter(status=VersionStatus.READY).order_by("-number").first()
    if latest is None or Review.objects.filter(version=latest).exists():
        return
    reviews.review_submit(actor=users["owner"], version=latest)
    reviews.signoff_record(
        actor=users["owner"],
        version=latest,
        decision="approve",
        meaning="reviewed",
        comment=f"Ready for validation. {NOTE}",
    )
    command.stdout.write(f"  governance: {latest} waits for the validator's sign-off")


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    """Add governance demo data for the demo ``users`` and ``models`` (credit, diabetes)."""
    _approve_credit(command, users, models["credit"])
    _diabetes_waiting(command, users, models["diabetes"])
