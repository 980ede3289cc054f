"""The model page's "Risk tier" panel: request a lowering, decide it (e-signature), withdraw.

The same services as the API (governance.risk_tiers); every POST redirects back
to the model page with the outcome as a message.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.permissions import user_can
from common.ui import or_404
from governance import risk_tiers
from governance.choices import RiskTierChangeState
from registry import selectors as registry_selectors
from registry.choices import RiskTier


class RiskTierRequestForm(forms.Form):
    risk_tier = forms.ChoiceField(choices=())
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)

    def __init__(self, *args: Any, current: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["risk_tier"]).choices = [
            (value, label)
            for value, label in RiskTier.choices
            if risk_tiers.is_lowering(current, value)
        ]


class RiskTierDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password to sign the decision.",
    )


def risk_tier_panel(request: HttpRequest, model: Any) -> dict[str, Any] | None:
    user = request.user
    changes = list(risk_tiers.risk_tier_change_list(user=user, model=model)[:6])
    pending = next((c for c in changes if c.state == RiskTierChangeState.PENDING), None)
    can_manage = user_can(user, "manage", model)
    can_decide = bool(
        pending
        and pending.requested_by_id != user.pk
        and pending.approver_role in risk_tiers.tier_change_roles(user=user, model=model)
    )
    can_request = pending is None and can_manage and model.risk_tier != RiskTier.LOW.value
    if not (changes or can_request):
        return None
    return {
        "id": "risk-tier",
        "title": "Risk tier",
        "template": "governance/_risk_tier_panel.html",
        "model": model,
        "pending": pending,
        "history": [c for c in changes if c is not pending][:5],
        "approver_role": risk_tiers.approver_role_for(risk_tier=model.risk_tier),
        "request_form": RiskTierRequestForm(current=model.risk_tier) if can_request else None,
        "decision_form": RiskTierDecisionForm() if can_decide else None,
        "can_withdraw": bool(pending and (pending.requested_by_id == user.pk or can_manage)),
    }


def _back(model_name: str) -> HttpResponse:
    return redirect("registry:model-detail", model_name)


def _refused(request: HttpRequest, exc: DomainError) -> None:
    messages.error(request, exc.message)


@login_required
@require_POST
def risk_tier_change_request(request: HttpRequest, name: str) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    form = RiskTierRequestForm(request.POST, current=model.risk_tier)
    if not form.is_valid():
        messages.error(request, "Choose a lower tier and say why.")
        return _back(name)
    try:
        risk_tiers.risk_tier_change_request(
            actor=request.user,
            model=model,
            risk_tier=form.cleaned_data["risk_tier"],
            reason=form.cleaned_data["reason"],
        )
        messages.success(request, "Requested; the tier changes once an approver signs it.")
    except DomainError as exc:
        _refused(request, exc)
    return _back(name)


@login_required
@require_POST
def risk_tier_change_decide(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    change = or_404(risk_tiers.risk_tier_change_get, user=request.user, model=model, pk=pk)
    form = RiskTierDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a decision and re-enter your password.")
        return _back(name)
    data = form.cleaned_data
    service = (
        risk_tiers.risk_tier_change_approve
        if data["decision"] == "approve"
        else risk_tiers.risk_tier_change_reject
    )
    try:
        change = service(
            actor=request.user, change=change, password=data["password"], comment=data["comment"]
        )
        messages.success(request, f"Risk-tier change {change.get_state_display().lower()}.")
    except DomainError as exc:
        _refused(request, exc)
    return _back(name)


@login_required
@require_POST
def risk_tier_change_withdraw(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    change = or_404(risk_tiers.risk_tier_change_get, user=request.user, model=model, pk=pk)
    try:
        risk_tiers.risk_tier_change_withdraw(actor=request.user, change=change)
        messages.success(request, "Risk-tier change withdrawn.")
    except DomainError as exc:
        _refused(request, exc)
    return _back(name)
