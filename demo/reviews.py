"""Demo state for the governance app, loaded by `manage.py demo` (idempotent).

Diabetes (medium risk): the latest version is reviewed by the owner and the
validator, approved and deployed to ``production``. Credit (high risk): the
latest version is in review, signed by the owner and the validator and waiting
for the compliance officer; its checklist shows why it cannot pass yet (the
demo's credit data is biased on purpose, so its fairness audits fail; see the
mitigation button on the version page). If a credit version ever passes all its
evidence, the demo approves it and deploys it to ``production`` instead.

The demo loader knows no passwords, so its sign-offs are recorded with
``reviews.signoff_record`` (the step after the e-signature check) and say so in
their comment; every sign-off given in the UI goes through ``signoff_create``.
"""

from __future__ import annotations

from typing import Any

from governance import policies, reviews, selectors
from governance.choices import ReviewState
from governance.models import Review
from registry import services as registry_services
from registry.choices import VersionStatus

NOTE = "[demo data: recorded by the demo loader without an e-signature]"


def _evidence_ok(version: Any, kinds: list[str]) -> bool:
    latest = selectors.latest_evidence(version=version)
    return all(kind in latest and latest[kind].passed is not False for kind in kinds)


SIGNERS = {
    "owner": ("reviewed", "Business case and data lineage confirmed."),
    "validator": ("validated", "Back-test and evidence reproduced."),
    "compliance": ("approved_for_deployment", "Regulatory review done."),
}


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
    for username in list(policy.required_roles) if passing else signers:
        if username not in policy.required_roles:
            continue
        meaning, comment = SIGNERS[username]
        reviews.signoff_record(
            actor=users[username],
            version=version,
            role=username,
            decision="approve",
            meaning=meaning,
            comment=f"{comment} {NOTE}",
        )
    review = Review.objects.get(version=version)
    if review.state == ReviewState.APPROVED:
        registry_services.alias_set(
            actor=users["owner"], model=model, name="production", version_number=version.number
        )
        command.stdout.write(f"  governance: {version} approved and deployed to production")
    else:
        missing = [
            i["requirement"] for i in selectors.review_checklist(review=review) if not i["met"]
        ]
        command.stdout.write(f"  governance: {version} in review, missing {', '.join(missing)}")


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    """Add governance demo data for the demo ``users`` and ``models`` (credit, diabetes)."""
    _review(command, users, models["diabetes"], signers=["owner", "validator"])
    _review(command, users, models["credit"], signers=["owner", "validator"])
