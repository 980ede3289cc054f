"""Create and edit a monitor from the monitoring dashboard.

The form calls ``services.monitor_create`` and ``services.monitor_update``, the
services behind ``POST`` and ``PATCH /api/v1/models/<name>/monitors/``: the same
checks, the same refusals (shown on the form), the same change right.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from common.errors import DomainError
from common.permissions import require
from common.ui import add_domain_error, error_response, or_404
from monitoring import selectors, services
from monitoring.choices import CheckKind, DriftMethod, MetricTolerance, PerformanceBaseline
from monitoring.models import Monitor
from registry import selectors as registry_selectors
from registry.choices import VersionStatus
from registry.models import RegisteredModel


class MonitorForm(forms.Form):
    name = forms.SlugField(max_length=100)
    alias = forms.ChoiceField(
        choices=(),
        required=False,
        help_text="Follow an alias: each check judges the version it points at then.",
    )
    version = forms.TypedChoiceField(
        coerce=int, choices=(), required=False, empty_value=None, help_text="Or stay on one."
    )
    checks = forms.MultipleChoiceField(
        choices=CheckKind.choices, widget=forms.CheckboxSelectMultiple
    )
    window_hours = forms.IntegerField(min_value=1, max_value=24 * 365, initial=24)
    window_rows = forms.IntegerField(
        min_value=1,
        max_value=1_000_000_000,
        required=False,
        help_text="Judge the newest batches holding this many rows instead of the last hours.",
    )
    drift_method = forms.ChoiceField(choices=DriftMethod.choices, initial=DriftMethod.AUTO)
    schedule_minutes = forms.IntegerField(min_value=1, max_value=60 * 24 * 31, initial=60)
    min_rows = forms.IntegerField(min_value=1, initial=100)
    thresholds = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='JSON, e.g. {"drift_share": 0.3, "metric_drop": 0.05}; empty: the defaults.',
    )
    baseline = forms.ChoiceField(
        choices=PerformanceBaseline.choices,
        initial=PerformanceBaseline.REFERENCE,
        label="Performance baseline",
    )
    baseline_days = forms.IntegerField(min_value=1, max_value=366, initial=7)
    metric_tolerance = forms.ChoiceField(
        choices=MetricTolerance.choices, initial=MetricTolerance.ABSOLUTE
    )
    notify = forms.BooleanField(required=False, initial=True, label="E-mail the owners")
    request_retraining = forms.BooleanField(required=False, label="Signal retraining on alerts")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, model: RegisteredModel, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ready = (
            registry_selectors.version_list(user=user, model=model)
            .filter(status=VersionStatus.READY)
            .order_by("-number")[:200]
        )
        self.fields["version"].choices = [("", "—")] + [(v.number, f"v{v.number}") for v in ready]  # type: ignore[attr-defined]
        aliases = registry_selectors.alias_list(user=user, model=model).values_list(
            "name", flat=True
        )
        self.fields["alias"].choices = [("", "— (stay on the version)")] + [
            (a, f"@{a}") for a in aliases
        ]  # type: ignore[attr-defined]

    def clean_thresholds(self) -> dict[str, Any] | None:
        text = (self.cleaned_data.get("thresholds") or "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give an object of threshold name to number.")
        return value

    @staticmethod
    def initial_for(monitor: Monitor) -> dict[str, Any]:
        values = {name: getattr(monitor, name) for name in services.MONITOR_EDITABLE}
        values["version"] = monitor.version.number
        values["thresholds"] = json.dumps(monitor.thresholds)
        return values


def _dashboard_url(model: RegisteredModel, monitor: Monitor | None = None) -> str:
    url = reverse("monitoring:dashboard", args=[model.name])
    return f"{url}?monitor={monitor.pk}" if monitor else url


def _changes(form: MonitorForm, model: RegisteredModel, user: Any) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    if data["version"] is not None:
        data["version"] = registry_selectors.version_get(
            user=user, model=model, number=data["version"]
        )
    return data


@login_required
@require_http_methods(["GET", "POST"])
def monitor_create(request: HttpRequest, name: str) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    try:
        require(request.user, "change", model)
    except DomainError as exc:
        return error_response(exc)
    form = MonitorForm(
        request.POST or None,
        model=model,
        user=request.user,
        initial={"checks": list(CheckKind.values)},
    )
    if request.method == "POST" and form.is_valid():
        data = _changes(form, model, request.user)
        data.pop("enabled")
        try:
            monitor = services.monitor_create(actor=request.user, model=model, **data)
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(
                request, f"Monitor {monitor.name} created; its first check is due now."
            )
            return redirect(_dashboard_url(model, monitor))
    return render(
        request, "monitoring/monitor_edit.html", {"model": model, "form": form, "monitor": None}
    )


@login_required
@require_http_methods(["GET", "POST"])
def monitor_edit(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    monitor = or_404(selectors.monitor_get, user=request.user, model=model, pk=pk)
    try:
        require(request.user, "change", monitor)
    except DomainError as exc:
        return error_response(exc)
    form = MonitorForm(
        request.POST or None,
        model=model,
        user=request.user,
        initial=MonitorForm.initial_for(monitor),
    )
    if request.method == "POST" and form.is_valid():
        changes = {
            k: v for k, v in _changes(form, model, request.user).items() if k in form.changed_data
        }
        try:
            monitor = services.monitor_update(actor=request.user, monitor=monitor, **changes)
        except DomainError as exc:
            add_domain_error(form, exc)
        else:
            messages.success(request, f"Monitor {monitor.name} saved.")
            return redirect(_dashboard_url(model, monitor))
    return render(
        request, "monitoring/monitor_edit.html", {"model": model, "form": form, "monitor": monitor}
    )
