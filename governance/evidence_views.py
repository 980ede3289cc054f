"""Evidence on the version page: fairness audits, the model card.

A failed audit's mitigation has its own panel, lifecycle's (a retraining run).

Panels are contributed to the registry's version page; the small POST views
call the same services as the API and answer htmx requests with the panel
fragment alone.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from common.errors import DomainError
from common.permissions import require, user_can
from common.ui import error_response
from governance import fairness_audits, model_cards, selectors
from governance.charts import group_chart, group_label
from governance.forms import FairnessAuditForm, ModelCardForm
from governance.models import ModelCard
from registry.models import ModelVersion
from registry.views import version_or_404

# --------------------------------------------------------------------------- panels


def evidence_summary_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any] | None:
    """The version page opens its evidence with every gate on one screen."""
    if version.status != "ready":
        return None
    gates = selectors.evidence_summary(version=version)
    counts = {s: sum(1 for g in gates if g["status"] == s) for s in ("passed", "failed", "missing")}
    return {
        "id": "evidence-summary",
        "title": "Evidence summary",
        "template": "governance/_evidence_summary.html",
        "gates": gates,
        "counts": counts,
    }


def fairness_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    user = request.user
    audit = selectors.latest_audit(version=version)
    recent = list(selectors.audit_list(user=user, version=version)[:5])
    task = version.registered_model.task
    scopes = []
    if audit is not None:
        rules = audit.report["rules"]
        for i, scope in enumerate(audit.report["scopes"]):
            for group in scope["groups"]:
                group["label"] = group_label(group["group"])
            scope_rules = [r for r in rules if r["scope"] == scope["name"]]
            scopes.append(
                {
                    "scope": scope,
                    "rules": scope_rules,
                    "counts": {
                        status: sum(r["status"] == status for r in scope_rules)
                        for status in ("passed", "failed", "not_computable")
                    },
                    "chart_id": f"fairness-chart-{i}",
                    "chart": group_chart(scope, task, audit.thresholds),
                }
            )
    can_audit = version.status == "ready" and any(
        user_can(user, a, version) for a in fairness_audits.AUDIT_ACTIONS
    )
    busy = any(a.status in ("queued", "running") for a in recent)
    return {
        "id": "fairness",
        "title": "Fairness audit",
        "poll_url": reverse(
            "governance:fairness-panel", args=[version.registered_model.name, version.number]
        )
        if busy
        else None,
        "template": "governance/_fairness_panel.html",
        "audit": audit,
        "recent": recent,
        "scopes": scopes,
        "metric_columns": _metric_columns(task),
        "form": FairnessAuditForm(version=version, user=user) if can_audit else None,
    }


def _metric_columns(task: str) -> list[str]:
    if task == "classification":
        return ["selection_rate", "accuracy", "tpr", "fpr", "fnr", "precision"]
    return ["rmse", "mae", "mean_prediction"]


def model_card_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    card, narrative = model_cards.narrative_of(version)
    _card, source = selectors.model_card_source(version=version)
    sensitive = selectors.sensitive_inputs(version=version)
    return {
        "id": "model-card",
        "sensitive_notice": (
            selectors.sensitive_inputs_notice(version=version, inputs=sensitive)
            if sensitive
            else ""
        ),
        "title": "Model card",
        "template": "governance/_model_card_panel.html",
        "card": card,
        "narrative": narrative,
        "missing": [f for f in ModelCard.REQUIRED_FIELDS if not narrative[f].strip()],
        "inherited": card is None and any(narrative.values()),
        "inherited_from": source.version.number if card is None and source else None,
        "can_edit": user_can(request.user, "change", version),
    }


# --------------------------------------------------------------------------- views


def _panel_response(
    request: HttpRequest, version: ModelVersion, panel: dict[str, Any]
) -> HttpResponse:
    if request.htmx:
        return render(request, "common/panel.html", {"panel": panel, "version": version})
    return redirect(f"{_version_url(version)}#panel-{panel['id']}")


def _version_url(version: ModelVersion) -> str:
    return reverse("registry:version-detail", args=[version.registered_model.name, version.number])


@login_required
@require_POST
def fairness_audit_create(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    form = FairnessAuditForm(request.POST, version=version, user=request.user)
    if form.is_valid():
        try:
            fairness_audits.fairness_audit_start(
                actor=request.user,
                version=version,
                dataset=form.cleaned_data["dataset"],
                target_column=form.cleaned_data["target_column"],
                sensitive_columns=form.cleaned_data["sensitive_features"],
                bootstrap=form.cleaned_data["bootstrap"] or 0,
            )
            messages.success(request, "Fairness audit queued; this panel updates when it is done.")
        except DomainError as exc:
            if exc.status == 403:
                return error_response(exc)
            form.add_error(None, exc.message)
    panel = fairness_panel(request, version)
    if form.errors:
        panel["form"] = form
        for error in form.non_field_errors():
            messages.error(request, error)
    return _panel_response(request, version, panel)


@login_required
@require_http_methods(["GET", "POST"])
def model_card_edit(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    try:
        require(request.user, "change", version)
    except DomainError as exc:
        return error_response(exc)
    _card, narrative = model_cards.narrative_of(version)
    form = ModelCardForm(request.POST or None, initial=narrative)
    if request.method == "POST" and form.is_valid():
        try:
            model_cards.model_card_update(
                actor=request.user, version=version, fields=form.cleaned_data
            )
            messages.success(request, "Model card saved and filed as evidence.")
            return redirect(f"{_version_url(version)}#panel-model-card")
        except DomainError as exc:
            form.add_error(None, exc.message)
    return render(
        request,
        "governance/model_card_edit.html",
        {"version": version, "model": version.registered_model, "form": form},
    )


@login_required
def model_card_export(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    card = model_cards.card_build(version)
    fmt = request.GET.get("format", "html")
    filename = f"{version.registered_model.name}-v{version.number}-model-card"
    if fmt == "json":
        response: HttpResponse = JsonResponse(
            model_cards.card_escaped(card), json_dumps_params={"indent": 2}
        )
    elif fmt == "md":
        response = HttpResponse(
            model_cards.card_render(card, "md"), content_type="text/markdown; charset=utf-8"
        )
    elif fmt == "html":
        return HttpResponse(model_cards.card_render(card, "html"))
    else:
        return HttpResponse(
            "format must be md, json or html", status=400, content_type="text/plain"
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


@login_required
def fairness_panel_view(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """The fairness panel alone (htmx polls it while an audit runs)."""
    version = version_or_404(request, name, number)
    return render(
        request,
        "common/panel.html",
        {"panel": fairness_panel(request, version), "version": version},
    )
