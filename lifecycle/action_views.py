"""Lifecycle actions started from the version page: request an evaluation on a chosen
dataset. (A fairness mitigation starts from the "Fairness mitigation" panel,
``retraining_views.mitigation_create``.)

Each view calls the service the API calls (``services.evaluation_start``), so the
UI refuses exactly what the API refuses, with the same message; a refusal for want
of a right is the API's 403 error shape, and what a user may not see is a 404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.permissions import user_can
from common.ui import error_response
from lifecycle import selectors, services
from registry import selectors as registry_selectors
from registry.models import ModelVersion
from registry.views import version_or_404

# --------------------------------------------------------------------------- evaluation


class EvaluationRequestForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=None)  # type: ignore[arg-type]
    target_column = forms.CharField(max_length=200)

    def __init__(self, *args: Any, version: ModelVersion, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].queryset = registry_selectors.dataset_list(  # type: ignore[attr-defined]
            user=user
        ).filter(registered_model=version.registered_model)
        if version.target_column:
            self.fields["target_column"].initial = version.target_column


def evaluation_request_context(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    """What the evaluation panel adds for its "Request an evaluation" form: the form for
    whoever ``evaluation_start`` would accept, and the evaluations still under way."""
    can = version.status == "ready" and any(
        user_can(request.user, action, version) for action in services.EVALUATION_ACTIONS
    )
    pending = list(
        selectors.evaluation_list(user=request.user, version=version).filter(
            status__in=("queued", "running")
        )[:5]
    )
    return {
        "request_form": EvaluationRequestForm(version=version, user=request.user) if can else None,
        "pending": pending,
        # While one is under way the panel refreshes itself (htmx), as the fairness panel does.
        "poll_url": reverse(
            "lifecycle:evaluation-panel", args=[version.registered_model.name, version.number]
        )
        if pending
        else None,
    }


@login_required
def evaluation_panel_view(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """The evaluation panel alone (htmx polls it while an evaluation is under way)."""
    from lifecycle.views import evaluation_panel  # lifecycle.views imports this module

    version = version_or_404(request, name, number)
    return render(
        request,
        "common/panel.html",
        {"panel": evaluation_panel(request, version), "version": version},
    )


def _version_url(version: ModelVersion, panel: str) -> str:
    name, number = version.registered_model.name, version.number
    return reverse("registry:version-detail", args=[name, number]) + f"#panel-{panel}"


@login_required
@require_POST
def evaluation_request(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    form = EvaluationRequestForm(request.POST, version=version, user=request.user)
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"The evaluation was not requested: {problems}")
        return redirect(_version_url(version, "evaluation"))
    try:
        job = services.evaluation_start(
            actor=request.user,
            version=version,
            dataset=form.cleaned_data["dataset"],
            target_column=form.cleaned_data["target_column"].strip(),
        )
    except DomainError as exc:
        if exc.status == 403:
            return error_response(exc)
        messages.error(request, exc.message)
        return redirect(_version_url(version, "evaluation"))
    messages.success(
        request,
        f"Evaluation #{job.pk} on {job.dataset} queued; a worker scores it next.",
    )
    return redirect(_version_url(version, "evaluation"))
