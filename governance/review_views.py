"""Approver web UI: the review panel and page, the sign-off form, the reviews list, home sections.

POST views call the same services as the API; htmx requests get the panel
fragment back, other requests a redirect.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.permissions import user_can
from common.ui import add_domain_error, paginate
from governance import policies, reviews, selectors
from governance.choices import ReviewState
from governance.forms import SignOffForm
from governance.models import Review
from registry import selectors as registry_selectors
from registry.models import ModelVersion
from registry.views import version_or_404


def _metrics_table(version: ModelVersion, review: Review) -> list[dict[str, Any]]:
    """Each metric of the version beside the champion's and the policy threshold."""
    champion = registry_selectors.champion_for(model=version.registered_model)
    policy = review.policy or policies.policy_current(risk_tier=version.registered_model.risk_tier)
    task = version.registered_model.task
    thresholds = (
        (policies.kind_thresholds(policy, "evaluation_report", task) or {}) if policy else {}
    )
    rows = []
    for name, value in sorted((version.metrics or {}).items()):
        bound = thresholds.get(name) or {}
        ok = None
        if isinstance(value, int | float) and bound:
            ok = ("min" not in bound or value >= bound["min"]) and (
                "max" not in bound or value <= bound["max"]
            )
        rows.append(
            {
                "name": name,
                "value": value,
                "champion": (champion.metrics or {}).get(name)
                if champion and champion.pk != version.pk
                else None,
                "threshold": bound,
                "ok": ok,
            }
        )
    return rows


def _blocking(checklist: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in checklist if i["requirement"].startswith("evidence:") and not i["met"]]


def _overridable(user: Any, version: ModelVersion, mine: list[str]) -> list[str]:
    """The failed or missing evidence the user's role may override (the form's field)."""
    review = selectors.review_get_or_draft(version=version)
    policy = review.policy
    if not policy or not policy.evidence_override_by or policy.evidence_override_by not in mine:
        return []
    return [b["requirement"] for b in _blocking(selectors.review_checklist(review=review))]


def review_panel(
    request: HttpRequest, version: ModelVersion, form: SignOffForm | None = None
) -> dict[str, Any]:
    user = request.user
    review = selectors.review_get_or_draft(version=version)
    mine = selectors.roles_of(user=user, version=version)
    policy = review.policy or policies.policy_current(risk_tier=version.registered_model.risk_tier)
    needed = set(policy.required_roles) if policy else set()
    # The one rule (selectors.signing_choice) decides whether the form is shown, and
    # otherwise gives the one reason why not.
    role, refusal = selectors.signing_choice(user=user, review=review) if mine else (None, None)
    can_sign = bool(mine) and refusal is None
    checklist = selectors.review_checklist(review=review)
    blocking = _blocking(checklist)
    approval_block, overridable = "", []
    if can_sign and blocking:
        if policy and policy.evidence_override_by and policy.evidence_override_by in mine:
            overridable = blocking
        else:
            # What the one rule would answer to "Approved for deployment" now.
            _items, block = selectors.approval_refusal(
                review=review,
                role=role or "",
                decision="approve",
                meaning="approved_for_deployment",
                checklist=checklist,
            )
            approval_block = block.message if block else ""
    blockers_text = (
        selectors.deploy_blockers_text(
            selectors.deploy_blockers(review=review, checklist=checklist)
        )
        if review.pk and review.state != ReviewState.APPROVED
        else ""
    )
    sensitive = selectors.sensitive_inputs(version=version)
    can_submit = (
        version.status == "ready"
        and review.state in (ReviewState.DRAFT, ReviewState.CHANGES_REQUESTED)
        and user_can(user, "register", version)
    )
    return {
        "id": "review",
        "title": "Review",
        "template": "governance/_review_panel.html",
        "review": review,
        "policy": policy,
        "checklist": checklist,
        "blockers_text": blockers_text,
        "approval_block": approval_block,
        "evidence": list(selectors.latest_evidence(version=version).values()),
        "signoffs": list(selectors.signoff_list(user=user, version=version)) if review.pk else [],
        "transitions": list(review.transitions.all()) if review.pk else [],
        "metrics": _metrics_table(version, review),
        "my_roles": mine,
        "can_sign": can_sign,
        "refusal": refusal.message if refusal and review.state == ReviewState.IN_REVIEW else "",
        "can_submit": can_submit,
        "expired": review.state == ReviewState.APPROVED and review.is_expired(),
        "sensitive_inputs": sensitive,
        "sensitive_notice": (
            selectors.sensitive_inputs_notice(version=version, inputs=sensitive)
            if sensitive
            else ""
        ),
        "form": form
        or (
            SignOffForm(
                roles=[r for r in mine if r in needed],
                sensitive_inputs=sensitive,
                overridable=[b["requirement"] for b in overridable],
            )
            if can_sign
            else None
        ),
    }


def _respond(
    request: HttpRequest, version: ModelVersion, form: SignOffForm | None = None
) -> HttpResponse:
    if request.htmx:
        panel = review_panel(request, version, form)
        return render(request, "common/panel.html", {"panel": panel, "version": version})
    if form is not None and form.errors:
        return review_page_render(request, version, form)
    return redirect("governance:review", version.registered_model.name, version.number)


@login_required
def review_page(request: HttpRequest, name: str, number: int) -> HttpResponse:
    return review_page_render(request, version_or_404(request, name, number))


def review_page_render(
    request: HttpRequest, version: ModelVersion, form: SignOffForm | None = None
) -> HttpResponse:
    context = {
        "version": version,
        "model": version.registered_model,
        "lineage": registry_selectors.version_lineage(version=version),
        "panel": review_panel(request, version, form),
    }
    return render(request, "governance/review.html", context, status=400 if form else 200)


@login_required
@require_POST
def review_submit(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    try:
        reviews.review_submit(actor=request.user, version=version)
    except DomainError as exc:
        form = SignOffForm()
        form.cleaned_data = {}  # an unbound form that only carries the refusal
        add_domain_error(form, exc)
        return _respond(request, version, form)
    return _respond(request, version)


@login_required
@require_POST
def signoff_create(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    mine = selectors.roles_of(user=request.user, version=version)
    sensitive = selectors.sensitive_inputs(version=version)
    form = SignOffForm(
        request.POST,
        roles=mine,
        sensitive_inputs=sensitive,
        overridable=_overridable(request.user, version, mine),
    )
    if form.is_valid():
        data = form.cleaned_data
        try:
            reviews.signoff_create(
                actor=request.user,
                version=version,
                password=data["password"],
                decision=data["decision"],
                meaning=data["meaning"],
                comment=data["comment"],
                role=data["role"] or None,
                acknowledge_sensitive_inputs=data.get("acknowledge_sensitive_inputs", False),
                override_justification=data.get("override_justification", ""),
            )
        except DomainError as exc:
            add_domain_error(form, exc)
            return _respond(request, version, form)
        return _respond(request, version)
    return _respond(request, version, form)


@login_required
def review_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state")
    queryset = selectors.review_list(user=request.user, state=state)
    return render(
        request,
        "governance/review_list.html",
        {"page": paginate(request, queryset), "states": ReviewState.choices, "state": state},
    )


# --- home sections ------------------------------------------------------------


def waiting_section(request: HttpRequest) -> dict[str, Any] | None:
    waiting = list(selectors.waiting_for(user=request.user)[:20])
    return {
        "id": "waiting",
        "title": "Waiting for my sign-off",
        "template": "governance/_home_waiting.html",
        "reviews": waiting,
    }


def decisions_section(request: HttpRequest) -> dict[str, Any] | None:
    return {
        "id": "decisions",
        "title": "Recent decisions and deployments",
        "template": "governance/_home_decisions.html",
        "reviews": selectors.recent_decisions(user=request.user),
        "deployments": selectors.recent_deployments(user=request.user),
        "reviews_url": reverse("governance:review-list"),
    }
