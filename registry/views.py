"""Approver-facing registry pages (read-only; writes come through the API and services)."""

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
from common.ui import error_response, or_404, paginate, querystring_without_page
from registry import selectors, services
from registry.choices import VersionStatus
from registry.filtersets import RegisteredModelFilterSet
from registry.models import ModelVersion


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    filterset = RegisteredModelFilterSet(
        request.GET, queryset=selectors.model_list(user=request.user)
    )
    page = paginate(request, filterset.qs)
    context = {"filterset": filterset, "page": page, "qs": querystring_without_page(request)}
    template = "registry/_model_table.html" if request.htmx else "registry/model_list.html"
    return render(request, template, context)


@login_required
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    model = or_404(selectors.model_get, user=request.user, name=name)
    versions, failed = selectors.version_split(user=request.user, model=model)
    aliases = selectors.alias_list(user=request.user, model=model)
    context = {
        "model": model,
        "page": paginate(request, versions),
        "failed_versions": failed[:50],
        "failed_count": failed.count(),
        "aliases": aliases,
        "movable_aliases": [a.name for a in aliases if not a.protected],
        "ready_numbers": list(
            versions.filter(status=VersionStatus.READY).values_list("number", flat=True)[:200]
        ),
        "can": {
            a: user_can(request.user, a, model) for a in ("change", "register", "deploy", "manage")
        },
        "panels": model_panels(request, model),
    }
    return render(request, "registry/model_detail.html", context)


@login_required
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    model = or_404(selectors.model_get, user=request.user, name=name)
    version = or_404(selectors.version_get, user=request.user, model=model, number=number)
    context = {
        "model": model,
        "version": version,
        "lineage": selectors.version_lineage(version=version),
        "children": version.children.order_by("number"),
        "warnings": selectors.version_warnings(version=version),
        "panels": version_panels(request, version),
    }
    return render(request, "registry/version_detail.html", context)


class AliasMoveForm(forms.Form):
    alias = forms.CharField(max_length=64)
    version = forms.IntegerField(min_value=1)


@login_required
@require_POST
def alias_move(request: HttpRequest, name: str) -> HttpResponse:
    """Point an alias at a ready version: ``alias_set`` as the API's PUT calls it, so a
    protected alias is refused (or gated) with the API's own message."""
    model = or_404(selectors.model_get, user=request.user, name=name)
    back = reverse("registry:model-detail", args=[model.name]) + "#aliases"
    form = AliasMoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name an alias and a version number.")
        return redirect(back)
    alias, number = form.cleaned_data["alias"].strip(), form.cleaned_data["version"]
    try:
        services.alias_set(actor=request.user, model=model, name=alias, version_number=number)
    except DomainError as exc:
        # Without the form's right (register) the refusal is the API's 403; with it,
        # a stricter requirement (deploy, for a protected alias) is told on the page.
        if exc.status == 403 and not user_can(request.user, "register", model):
            return error_response(exc)
        messages.error(request, exc.message)
        return redirect(back)
    messages.success(request, f"{model.name}@{alias} now points at v{number}.")
    return redirect(back)


def version_or_404(request: HttpRequest, name: str, number: int) -> ModelVersion:
    """The version ``name`` v``number`` the user may see, else the 404 page."""
    model = or_404(selectors.model_get, user=request.user, name=name)
    return or_404(selectors.version_get, user=request.user, model=model, number=number)


# Other apps add panels (evidence, review, monitoring) to the version page.
# ``order`` sorts them (lower first); ties keep registration order.
_version_panels: list[tuple[int, Any]] = []


def register_version_panel(provider: Any, *, order: int = 100) -> None:
    if all(p is not provider for _, p in _version_panels):
        _version_panels.append((order, provider))
        _version_panels.sort(key=lambda item: item[0])


def version_panels(request: HttpRequest, version: Any) -> list[dict[str, Any]]:
    panels = [provider(request, version) for _, provider in _version_panels]
    return [p for p in panels if p]


# The same for the model page (retraining, deployments): ``provider(request, model)``
# returns a panel dict (``id``, ``title``, ``template``, context) or None.
_model_panels: list[tuple[int, Any]] = []


def register_model_panel(provider: Any, *, order: int = 100) -> None:
    if all(p is not provider for _, p in _model_panels):
        _model_panels.append((order, provider))
        _model_panels.sort(key=lambda item: item[0])


def model_panels(request: HttpRequest, model: Any) -> list[dict[str, Any]]:
    panels = [provider(request, model) for _, provider in _model_panels]
    return [p for p in panels if p]


def my_models_section(request: HttpRequest) -> dict[str, Any] | None:
    models = selectors.model_list(user=request.user).filter(owner=request.user)[:10]
    return {
        "id": "my-models",
        "title": "My models",
        "template": "registry/_home_models.html",
        "models": models,
    }
