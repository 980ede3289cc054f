"""Lifecycle contributions to the approver UI."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.permissions import require, user_can
from common.ui import error_response, or_404
from lifecycle import deployments, rollout_charts, rollouts, selectors, services
from lifecycle import evaluation as ev
from lifecycle.action_views import evaluation_request_context
from lifecycle.charts import importance_chart
from lifecycle.deployment_forms import DeployForms
from lifecycle.models import CandidateMode, Environment, Strategy
from lifecycle.selectors import latest_evaluation
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel
from registry.views import model_detail, version_or_404

LOG_PAGE_ROWS = 100


def evaluation_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any] | None:
    """The version page's "Evaluation" card: metrics beside the champion, importance."""
    job = latest_evaluation(version=version)
    if job is None:
        return {
            "id": "evaluation",
            "title": "Evaluation",
            "template": "lifecycle/_evaluation_panel.html",
            "evaluation": None,
            **evaluation_request_context(request, version),
        }
    comparison = (
        ev.compare_reports(job.report, job.champion_report) if job.champion_report else None
    )
    importance = job.importance["features"] if job.importance else []
    # Importance is compared with the parent's latest evaluation when there is
    # one (what changed in this retraining), else with the champion scored in
    # the same job (what changes if this version replaces it).
    parent_job = latest_evaluation(version=version.parent) if version.parent_id else None
    baseline, baseline_label = None, ""
    if parent_job and parent_job.importance:
        baseline, baseline_label = parent_job.importance, f"parent v{version.parent.number}"
    elif job.champion_importance and job.champion:
        baseline, baseline_label = job.champion_importance, f"champion v{job.champion.number}"
    importance_change = (
        ev.compare_importance(job.importance, baseline) if baseline and job.importance else None
    )
    # Signed bars around a centre axis: a negative importance (shuffling the feature
    # made the score better) is drawn to the left, never as its absolute value.
    top = max((abs(row["mean"]) for row in importance), default=0) or 1
    return {
        "id": "evaluation",
        "title": "Evaluation",
        "template": "lifecycle/_evaluation_panel.html",
        "evaluation": job,
        "comparison": comparison,
        "metrics_better": sum(row.get("better") is True for row in (comparison or {}).values()),
        "metrics_worse": sum(row.get("better") is False for row in (comparison or {}).values()),
        "metrics": job.report["metrics"],
        "importance": [
            {
                **row,
                "width": round(50 * abs(row["mean"]) / top, 1),
                "left": round(50 - (50 * abs(row["mean"]) / top if row["mean"] < 0 else 0), 1),
                "negative": row["mean"] < 0,
            }
            for row in importance
        ],
        "importance_change": importance_change,
        "baseline_label": baseline_label,
        "importance_chart": importance_chart(job.importance, baseline, baseline_label, version),
        "confusion": [
            {"label": label, "cells": cells}
            for label, cells in zip(
                job.report.get("classes", []), job.report.get("confusion_matrix", []), strict=False
            )
        ],
        **evaluation_request_context(request, version),
    }


# --- per-prediction explanations ---------------------------------------------------------


def explanations_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any] | None:
    """The version page: each feature's contribution to a sample of predictions."""
    if version.status != "ready":
        return None
    job = selectors.latest_explanation(version=version)
    busy = job is not None and job.status in ("queued", "running")
    rows = []
    if job is not None and job.status == "succeeded" and job.result:
        for row in job.result["rows"]:
            top = max((abs(c["contribution"] or 0) for c in row["contributions"]), default=0) or 1
            rows.append(
                {
                    **row,
                    "bars": [
                        {
                            **c,
                            "width": round(50 * abs(c["contribution"] or 0) / top, 1),
                            "left": round(
                                50 - (50 * abs(c["contribution"]) / top)
                                if (c["contribution"] or 0) < 0
                                else 50,
                                1,
                            ),
                            "negative": (c["contribution"] or 0) < 0,
                        }
                        for c in row["contributions"]
                    ],
                }
            )
    url_args = [version.registered_model.name, version.number]
    return {
        "id": "explanations",
        "title": "Per-prediction explanations",
        "template": "lifecycle/_explanations_panel.html",
        "job": job,
        "rows": rows,
        "can_explain": any(user_can(request.user, a, version) for a in services.EVALUATION_ACTIONS),
        "poll_url": reverse("lifecycle:explanations-panel", args=url_args) if busy else "",
        "start_url": reverse("lifecycle:explanation-start", args=url_args),
    }


@login_required
def explanations_panel_view(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    return render(
        request,
        "common/panel.html",
        {"panel": explanations_panel(request, version), "version": version},
    )


@login_required
@require_POST
def explanation_start(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = version_or_404(request, name, number)
    try:
        size = int(request.POST.get("sample_size", "10") or 10)
        services.explanation_start(actor=request.user, version=version, sample_size=size)
        messages.success(request, f"Explaining {size} predictions: a worker computes them.")
    except ValueError:
        messages.error(request, "Give a number of rows.")
    except DomainError as exc:
        messages.error(request, exc.message)
    if request.htmx:
        return explanations_panel_view(request, name, number)
    return redirect(reverse("registry:version-detail", args=[name, number]) + "#panel-explanations")


# --- deployments: the model page's panel, the version page's, deploy and rollback -----------


def _analysis_points(deployment: Any) -> list[dict[str, Any]]:
    return [
        {
            "at": a.created_at.isoformat(),
            "kind": a.kind,
            "step_index": a.step_index,
            "share": a.share,
            "verdict": a.verdict,
            "figures": a.figures,
        }
        for a in deployment.analyses.all()  # prefetched, oldest first
    ]


def deployments_panel(request: HttpRequest, model: RegisteredModel) -> dict[str, Any] | None:
    """The model page's "Deployments" panel: one card per environment."""
    user = request.user
    can_deploy = user_can(user, "deploy", model)
    # A deploy form sent back with its mistakes (``deploy`` below), by environment.
    bound = getattr(request, "deploy_forms", {})
    environments = []
    for environment in selectors.environment_list(user=user, model=model):
        recent = list(selectors.deployment_list(user=user, environment=environment)[:5])
        for d in recent:
            d.analysis_chart = d.analysis_summary = None
            if d.strategy in (Strategy.CANARY, Strategy.SHADOW):
                points = _analysis_points(d)
                d.analysis_chart = rollout_charts.analysis_chart(points)
                d.analysis_summary = rollout_charts.summary(points)
                d.analysis_failed = any(p["verdict"] == "fail" for p in points)
                d.chart_id = f"rollout-chart-spec-{d.pk}"
            d.replay = next((a for a in d.analyses.all() if a.kind == "replay"), None)
        environments.append(
            {
                "env": environment,
                "deployable": selectors.deployable_versions(actor=user, environment=environment)
                if can_deploy
                else [],
                "deploy": bound.get(environment.pk)
                or DeployForms(environment_id=environment.pk, task=model.task)
                if can_deploy
                else None,
                "history": selectors.environment_history(environment=environment, limit=10),
                "deployments": recent,
                "errors": selectors.serving_errors(environment=environment)[:10],
                "traffic": selectors.serving_traffic(environment=environment),
                "stable_share": 100.0
                if environment.candidate_mode == CandidateMode.SHADOW
                else round(100 * (1 - environment.candidate_share), 1),
                "candidate_share": round(100 * environment.candidate_share, 1),
            }
        )
    deploying = any(e["env"].phase != "idle" for e in environments)
    return {
        "id": "deployments",
        "title": "Deployments",
        "template": "lifecycle/_deployments_panel.html",
        "model": model,
        "environments": environments,
        "can_deploy": can_deploy,
        "poll_url": reverse("lifecycle:deployments-panel", args=[model.name]) if deploying else "",
    }


def version_deployments_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any] | None:
    """The version page: where this version is deployed."""
    return {
        "id": "deployed",
        "title": "Deployed in",
        "template": "lifecycle/_version_deployments_panel.html",
        "places": selectors.version_environments(version=version),
    }


def _panel_response(request: HttpRequest, model: RegisteredModel) -> HttpResponse:
    if request.htmx:
        panel = deployments_panel(request, model)
        return render(request, "common/panel.html", {"panel": panel})
    return redirect("registry:model-detail", model.name)


@login_required
def deployments_panel_view(request: HttpRequest, name: str) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    return render(request, "common/panel.html", {"panel": deployments_panel(request, model)})


def _environment_or_404(request: HttpRequest, name: str, environment: str) -> Environment:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    return or_404(selectors.environment_get, user=request.user, model=model, name=environment)


@login_required
@require_POST
def deploy(request: HttpRequest, name: str, environment: str) -> HttpResponse:
    """Deploy a version with a strategy and its options: the plan the API's request
    body holds, through the API's service (``deployments.deployment_start``). Bad input
    or a refusal: the form again with the mistake at its field (422), nothing changed;
    without the deploy right, the API's 403 error shape."""
    target = _environment_or_404(request, name, environment)
    model = target.registered_model
    try:
        require(request.user, "deploy", model)
    except DomainError as exc:
        return error_response(exc)
    form = DeployForms(request.POST, environment_id=target.pk, task=model.task)
    if form.is_valid():
        number = form.main.cleaned_data["version"]
        strategy = form.main.cleaned_data["strategy"]
        try:
            version = ModelVersion.objects.filter(registered_model=model, number=number).first()
            if version is None:
                raise DomainError(
                    "invalid", f"{model.name} has no version {number}.", details={"version": number}
                )
            deployments.deployment_start(
                actor=request.user,
                environment=target,
                version=version,
                strategy=strategy,
                plan=form.plan(),
            )
        except DomainError as exc:
            if exc.status == 403:
                return error_response(exc)
            form.refuse(exc)
        else:
            messages.success(
                request, f"Deploying v{number} to {target.name} ({Strategy(strategy).label})."
            )
            return _panel_response(request, model)
    request.deploy_forms = {target.pk: form}  # type: ignore[attr-defined]
    if request.htmx:
        panel = deployments_panel(request, model)
        return render(request, "common/panel.html", {"panel": panel}, status=422)
    response = model_detail(request, model.name)
    response.status_code = 422
    return response


@login_required
@require_POST
def rollback(request: HttpRequest, name: str, environment: str) -> HttpResponse:
    target = _environment_or_404(request, name, environment)
    try:
        deployments.environment_rollback(
            actor=request.user, environment=target, reason=request.POST.get("reason", "")
        )
        messages.success(request, f"{target.name} rolled back.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return _panel_response(request, target.registered_model)


@login_required
@require_POST
def rollout_action(request: HttpRequest, name: str, environment: str, pk: int) -> HttpResponse:
    """Pause, resume, promote or abort a running canary or shadow (the deploy right)."""
    target = _environment_or_404(request, name, environment)
    deployment = or_404(selectors.deployment_get, user=request.user, environment=target, pk=pk)
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    try:
        if action in ("promote", "keep_stable"):  # keep_stable: an A/B ended on stable's side
            stable = deployment.environment.stable_version
            rollouts.deployment_promote(
                actor=request.user,
                deployment=deployment,
                reason=reason,
                version=stable.number if action == "keep_stable" and stable else None,
            )
        elif action == "pause":
            rollouts.deployment_pause(actor=request.user, deployment=deployment, reason=reason)
        elif action == "resume":
            rollouts.deployment_resume(actor=request.user, deployment=deployment)
        elif action == "abort":
            rollouts.deployment_abort(actor=request.user, deployment=deployment, reason=reason)
        else:
            raise DomainError("invalid", "Choose promote, pause, resume or abort.")
        messages.success(request, f"Deployment #{deployment.pk}: {action} done.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return _panel_response(request, target.registered_model)


@login_required
def prediction_log(request: HttpRequest, name: str, environment: str) -> HttpResponse:
    """An environment's prediction log: filters, the first rows, CSV and Parquet export."""
    from lifecycle.api.views import log_export_response, log_filters

    target = _environment_or_404(request, name, environment)
    try:
        filters = log_filters(request.GET)
    except DomainError as exc:
        messages.error(request, exc.message)
        filters = {}
    export = request.GET.get("export")
    if export in ("csv", "parquet"):
        table = selectors.serving_log(environment=target, **filters)
        return log_export_response(target, table, export)
    table = selectors.serving_log(environment=target, limit=LOG_PAGE_ROWS, **filters)
    rows = table.to_pylist()
    query = {k: v for k, v in request.GET.items() if k != "export" and v}
    return render(
        request,
        "lifecycle/prediction_log.html",
        {
            "environment": target,
            "model": target.registered_model,
            "columns": table.column_names,
            "rows": [[row[c] for c in table.column_names] for row in rows],
            "shown": len(rows),
            "limit": LOG_PAGE_ROWS,
            "filters": request.GET,
            "query": urlencode(query),
        },
    )
