"""Retraining in the approver UI: the model page's panel, the policy form, "Retrain now",
the run page, the "what changed" panel of a retrained version, alert links, and the
version page's Fairness mitigation panel ("Start mitigation" on a failed audit).

Views read through selectors and write through ``lifecycle.retraining``, like the API.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from common import metrics as common_metrics
from common.errors import DomainError
from common.permissions import user_can
from common.ui import add_domain_error, or_404
from governance import selectors as governance_selectors
from governance.choices import Constraint, MitigationMethod
from governance.selectors import latest_audit
from lifecycle import retraining, selectors, strategies
from lifecycle.models import RetrainingPolicy, RetrainingRun, RetrainingStrategy
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel
from registry.views import version_or_404

# --------------------------------------------------------------------------- forms


class RetrainingPolicyForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    strategy = forms.ChoiceField(choices=RetrainingStrategy.choices)
    params = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='Parameters as JSON, e.g. {"add_estimators": 50}; empty: the defaults.',
    )
    schedule = forms.CharField(
        required=False, max_length=100, help_text="Cron (UTC), e.g. 0 3 * * 1; empty: no schedule."
    )
    on_alert = forms.BooleanField(required=False, label="Retrain on monitoring alerts")
    debounce_checks = forms.IntegerField(min_value=1, label="Alert held in k checks")
    debounce_window = forms.IntegerField(min_value=1, label="... of the last n checks")
    on_new_dataset = forms.BooleanField(required=False, label="Retrain on a new training dataset")
    training_dataset = forms.ModelChoiceField(
        queryset=None,  # type: ignore[arg-type]
        required=False,
        empty_label="the newest training dataset",
    )
    evaluation_dataset = forms.ModelChoiceField(
        queryset=None,  # type: ignore[arg-type]
        required=False,
        empty_label="a seeded hold-out of the run's rows",
    )
    target_column = forms.CharField(required=False, help_text="Empty: the parent's target.")
    production_window_hours = forms.IntegerField(
        min_value=0, help_text="Add the labelled production rows of the last N hours (0: none)."
    )
    max_rows = forms.IntegerField(min_value=10, required=False, help_text="Empty: no cap.")
    holdout_fraction = forms.FloatField(min_value=0.05, max_value=0.5)
    seed = forms.IntegerField(min_value=0)
    cooldown_minutes = forms.IntegerField(min_value=0)
    daily_budget = forms.IntegerField(min_value=0, label="Automatic runs per day")
    auto_submit = forms.BooleanField(required=False, label="Submit the candidate for review")
    primary_metric = forms.ChoiceField(choices=())
    tolerance = forms.FloatField(min_value=0, help_text="How much worse than the champion.")
    sensitive_columns = forms.CharField(
        required=False, help_text="Comma-separated; a fairness audit follows each run."
    )

    def __init__(self, *args: Any, model: RegisteredModel, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        datasets = registry_selectors.dataset_list(user=user).filter(registered_model=model)
        self.fields["training_dataset"].queryset = datasets  # type: ignore[attr-defined]
        self.fields["evaluation_dataset"].queryset = datasets  # type: ignore[attr-defined]
        self.fields["primary_metric"].choices = [  # type: ignore[attr-defined]
            (name, name) for name in common_metrics.names(model.task)
        ]

    def clean_params(self) -> dict[str, Any]:
        text = (self.cleaned_data.get("params") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give an object of name to value.")
        return value

    def clean_sensitive_columns(self) -> list[str]:
        text = self.cleaned_data.get("sensitive_columns") or ""
        return [name.strip() for name in text.split(",") if name.strip()]

    @staticmethod
    def initial_for(model: RegisteredModel, policy: RetrainingPolicy | None) -> dict[str, Any]:
        values = (
            {name: getattr(policy, name) for name in retraining.POLICY_FIELDS}
            if policy
            else retraining.policy_defaults(model)
        )
        values["params"] = json.dumps(values["params"]) if values["params"] else ""
        values["sensitive_columns"] = ", ".join(values["sensitive_columns"])
        return values


class RetrainNowForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)
    force = forms.BooleanField(required=False, label="Override the cooldown")


class MitigationForm(forms.Form):
    """ "Start mitigation" on a failed audit: a fairness_mitigation retraining run."""

    method = forms.ChoiceField(choices=MitigationMethod.choices)
    constraint = forms.ChoiceField(choices=Constraint.choices)
    force = forms.BooleanField(required=False, label="Override the cooldown")


# --------------------------------------------------------------------------- helpers


def _model(request: HttpRequest, name: str) -> RegisteredModel:
    return or_404(registry_selectors.model_get, user=request.user, name=name)


def _model_url(model: RegisteredModel) -> str:
    return reverse("registry:model-detail", args=[model.name]) + "#panel-retraining"


def run_url(run: RetrainingRun) -> str:
    return reverse("lifecycle:retraining-run", args=[run.registered_model.name, run.pk])


def outcome_words(run: RetrainingRun) -> str:
    """What became of a run, in one sentence for the model page."""
    if run.status == "failed":
        return f"Failed: {run.error.splitlines()[-1] if run.error else 'no reason recorded'}"
    if run.status in ("queued", "running"):
        return "Queued." if run.status == "queued" else "Training…"
    version = f"v{run.version.number}" if run.version_id else "the candidate"
    reason = (run.comparison or {}).get("reason", "")
    if run.outcome == "rejected_by_champion":
        return f"{version} was registered but not submitted: the champion is better. {reason}"
    if run.outcome == "not_comparable":
        return f"{version} was registered but not submitted: it could not be compared. {reason}"
    if run.outcome == "candidate_submitted":
        return f"{version} is in review. {reason}"
    if run.outcome == "candidate_ready":
        return f"{version} is ready, not submitted. {reason}"
    if run.outcome == "version_failed":
        return f"{version} failed validation: {run.version.status_reason}"
    if run.outcome == "awaiting_validation":
        return f"{version} is being validated. {reason}"
    return run.get_outcome_display()


def _policy_summary(policy: RetrainingPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "next_run_at": retraining.next_cron_time(policy.schedule, timezone.now())
        if policy.enabled and policy.schedule
        else None,
        "strategy_summary": strategies.STRATEGIES[policy.strategy].summary,
    }


# --------------------------------------------------------------------------- panels


def retraining_panel(request: HttpRequest, model: RegisteredModel) -> dict[str, Any] | None:
    """The model page's Retraining panel: policy, next run, "Retrain now", history."""
    policy = selectors.retraining_policy_get(model=model)
    runs = list(selectors.retraining_run_list(user=request.user, model=model)[:15])
    for run in runs:
        run.words = outcome_words(run)
    return {
        "id": "retraining",
        "title": "Retraining",
        "template": "lifecycle/_retraining_panel.html",
        "model": model,
        "policy": policy,
        "summary": _policy_summary(policy),
        "runs": runs,
        "skips": list(selectors.retraining_skip_list(user=request.user, model=model)[:5]),
        "can_manage": user_can(request.user, "manage", model),
        "can_retrain": user_can(request.user, "register", model),
        "retrain_form": RetrainNowForm(),
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    keys = sorted(set(before) | set(after))
    return [
        {"name": k, "before": before.get(k, "—"), "after": after.get(k, "—")}
        for k in keys
        if before.get(k) != after.get(k)
    ]


def retrained_version_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any] | None:
    """A retrained version's page: its run, its parent, and what changed beside the parent."""
    run = selectors.retraining_run_of(version=version)
    if run is None:
        return None
    parent = run.parent
    comparison = run.comparison or {}
    after_metrics = comparison.get("candidate_metrics", {})
    before_metrics = comparison.get("parent_metrics", {})
    metric_rows = [
        {
            "name": name,
            "before": before_metrics.get(name),
            "after": after_metrics.get(name),
            "better": common_metrics.better(name, after_metrics[name], before_metrics[name])
            if name in after_metrics and name in before_metrics
            else None,
        }
        for name in common_metrics.names(version.registered_model.task)
        if name in after_metrics or name in before_metrics
    ]
    return {
        "id": "retraining-run",
        "title": "Retraining: what changed",
        "template": "lifecycle/_retrained_version_panel.html",
        "run": run,
        "parent": parent,
        "words": outcome_words(run),
        "metric_rows": metric_rows,
        "metrics_better": sum(row["better"] is True for row in metric_rows),
        "metrics_worse": sum(row["better"] is False for row in metric_rows),
        "compared_on": comparison.get("compared_on", ""),
        "data": {
            "parent_dataset": parent.training_dataset,
            "parent_sha256": parent.training_dataset_sha256,
            "dataset": version.training_dataset,
            "sha256": version.training_dataset_sha256,
            "record": run.data_record,
        },
        "hyperparameters": _changes(parent.hyperparameters or {}, version.hyperparameters or {}),
    }


def mitigation_panel(request: HttpRequest, version: ModelVersion) -> dict[str, Any] | None:
    """The version page's Fairness mitigation panel: its mitigation runs and, for the
    owner when the latest audit failed, "Start mitigation" (a retraining run)."""
    user = request.user
    runs = list(selectors.mitigation_run_list(user=user, version=version)[:5])
    audit = latest_audit(version=version)
    failed = audit is not None and audit.passed is False
    if not runs and not failed:
        return None
    for run in runs:
        run.words = outcome_words(run)
    model = version.registered_model
    can_mitigate = (
        failed
        and model.task == "classification"
        and user_can(user, "manage", model)
        and user_can(user, "register", model)
    )
    busy = any(
        run.status in ("queued", "running")
        or run.outcome == "awaiting_validation"
        or (run.follow_up_audit_id and run.follow_up_audit.status in ("queued", "running"))
        for run in runs
    )
    return {
        "id": "mitigation",
        "title": "Fairness mitigation",
        "template": "lifecycle/_mitigation_panel.html",
        "poll_url": reverse("lifecycle:mitigation-panel", args=[model.name, version.number])
        if busy
        else None,
        "audit": audit if failed else None,
        "runs": runs,
        "form": MitigationForm() if can_mitigate else None,
    }


def alert_links(request: HttpRequest, alerts: list[Any]) -> dict[int, list[dict[str, str]]]:
    """Monitoring's alert list: the runs an alert started, or why it started none."""
    ids = [a.pk for a in alerts]
    links: dict[int, list[dict[str, str]]] = {}
    for alert_id, runs in selectors.retraining_runs_for_alerts(
        user=request.user, alert_ids=ids
    ).items():
        links[alert_id] = [
            {
                "text": f"Retraining run #{run.pk}: {outcome_words(run)}"[:160],
                "url": run_url(run),
            }
            for run in runs
        ]
    for alert_id, skips in selectors.retraining_skips_for_alerts(
        user=request.user, alert_ids=ids
    ).items():
        links.setdefault(alert_id, []).extend(
            {
                "text": f"Retraining skipped: {skip.reason}"[:160],
                "url": reverse("registry:model-detail", args=[skip.registered_model.name])
                + "#panel-retraining",
            }
            for skip in skips
        )
    return links


# --------------------------------------------------------------------------- pages


@login_required
def policy_edit(request: HttpRequest, name: str) -> HttpResponse:
    model = _model(request, name)
    if not user_can(request.user, "manage", model):
        raise PermissionDenied("Setting the retraining policy needs the manage right (the owner).")
    policy = selectors.retraining_policy_get(model=model)
    form = RetrainingPolicyForm(
        request.POST or None,
        model=model,
        user=request.user,
        initial=RetrainingPolicyForm.initial_for(model, policy),
    )
    if request.method == "POST" and form.is_valid():
        try:
            retraining.retraining_policy_set(actor=request.user, model=model, **form.cleaned_data)
            messages.success(request, "Retraining policy saved.")
            return redirect(_model_url(model))
        except DomainError as exc:
            add_domain_error(form, exc)
    return render(
        request,
        "lifecycle/retraining_policy_edit.html",
        {
            "model": model,
            "form": form,
            "policy": policy,
            "strategies": strategies.describe(),
        },
    )


@login_required
@require_POST
def retrain_now(request: HttpRequest, name: str) -> HttpResponse:
    model = _model(request, name)
    form = RetrainNowForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The reason is at most 2000 characters.")
        return redirect(_model_url(model))
    try:
        run = retraining.retraining_run_request(
            actor=request.user,
            model=model,
            reason=form.cleaned_data["reason"],
            force=form.cleaned_data["force"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(_model_url(model))
    messages.success(request, f"Retraining run #{run.pk} queued: a worker trains it next.")
    return redirect(run_url(run))


@login_required
def run_detail(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    model = _model(request, name)
    run = or_404(selectors.retraining_run_get, user=request.user, model=model, pk=pk)
    context = {
        "model": model,
        "run": run,
        "words": outcome_words(run),
        "record": run.data_record or {},
        "training": run.training_record or {},
        "live": run.status in ("queued", "running") or run.outcome == "awaiting_validation",
    }
    template = (
        "lifecycle/_retraining_run_body.html" if request.htmx else "lifecycle/retraining_run.html"
    )
    return render(request, template, context)


def _mitigation_response(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    panel = mitigation_panel(request, version)
    if request.htmx and panel is not None:
        return render(request, "common/panel.html", {"panel": panel, "version": version})
    url = reverse("registry:version-detail", args=[version.registered_model.name, version.number])
    return redirect(f"{url}#panel-mitigation")


@login_required
@require_POST
def mitigation_create(request: HttpRequest, name: str, number: int, audit_id: int) -> HttpResponse:
    """ "Start mitigation" (the fairness panel's old action, same URL): a retraining run."""
    version = version_or_404(request, name, number)
    audit = or_404(governance_selectors.audit_get, user=request.user, version=version, pk=audit_id)
    form = MitigationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a mitigation method and a constraint.")
        return _mitigation_response(request, version)
    try:
        run = retraining.fairness_mitigation_request(
            actor=request.user, audit=audit, **form.cleaned_data
        )
        messages.success(
            request,
            f"Retraining run #{run.pk} queued (fairness mitigation): a candidate version "
            "will be registered, evaluated and audited again.",
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    return _mitigation_response(request, version)


@login_required
def mitigation_panel_view(request: HttpRequest, name: str, number: int) -> HttpResponse:
    """The mitigation panel alone (htmx polls it while a run or its evidence is busy)."""
    version = version_or_404(request, name, number)
    panel = mitigation_panel(request, version)
    if panel is None:
        return HttpResponse("")
    return render(request, "common/panel.html", {"panel": panel, "version": version})
