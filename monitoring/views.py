"""Monitoring UI: the per-model dashboard, its alert actions (htmx), the version
panel and the home section. Views read through selectors and write through
services, exactly like the API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from common.errors import DomainError
from common.models import JobStatus
from common.permissions import user_can
from common.ui import error_response, or_404
from monitoring import charts, selectors, services
from monitoring.choices import ACTIVE_ALERT_STATUSES
from monitoring.models import CheckRun
from registry import selectors as registry_selectors

ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)

# Other apps say what an alert led to (lifecycle: the retraining run it started):
# ``provider(request, alerts)`` returns {alert id: [{"text", "url"}, ...]}.
_alert_link_providers: list[Any] = []


def register_alert_links(provider: Any) -> None:
    if provider not in _alert_link_providers:
        _alert_link_providers.append(provider)


def _alert_links(request: HttpRequest, alerts: list[Any]) -> None:
    for alert in alerts:
        alert.links = []
    for provider in _alert_link_providers:
        found = provider(request, alerts)
        for alert in alerts:
            alert.links.extend(found.get(alert.pk, []))


def _alerts_context(request: HttpRequest, model: Any) -> dict[str, Any]:
    alerts = selectors.alert_list(user=request.user).filter(registered_model=model)
    show = request.GET.get("alerts", "active")
    if show == "active":
        alerts = alerts.filter(status__in=ACTIVE_ALERT_STATUSES)
    shown = list(alerts[:50])
    _alert_links(request, shown)
    return {
        "model": model,
        "alerts": shown,
        "show": show,
        "can_change": user_can(request.user, "change", model),
    }


@login_required
def dashboard(request: HttpRequest, name: str) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    monitors = list(selectors.monitor_list(user=request.user, model=model))
    chosen = None
    if monitors:
        wanted = request.GET.get("monitor")
        chosen = next((m for m in monitors if str(m.pk) == wanted), monitors[0])
    runs: list[CheckRun] = []
    if chosen is not None:
        runs = list(
            selectors.check_list(user=request.user, monitor=chosen).filter(status="succeeded")[:200]
        )
        runs.reverse()
    latest = runs[-1] if runs else None
    feature = request.GET.get("feature")
    feature_chart = charts.feature_overlay(chosen, latest, feature) if latest else None
    context = {
        "model": model,
        "monitors": monitors,
        "monitor": chosen,
        "runs": runs[-20:][::-1],
        "latest": latest,
        "drift_rows": drift_rows(latest.drift.get("columns", [])) if latest else [],
        "output_rows": _output_rows(latest) if latest else [],
        "drift_chart": charts.drift_over_time(runs, chosen) if runs else None,
        "metric_chart": charts.metrics_over_time(runs, chosen) if runs else None,
        "baseline_source": _baseline_source(latest),
        "feature_chart": feature_chart,
        "feature_cdf_chart": feature_chart.pop("cumulative", None) if feature_chart else None,
        **_check_status_context(request, model, chosen),
        **_alerts_context(request, model),
    }
    return render(request, "monitoring/dashboard.html", context)


def _baseline_source(run: CheckRun | None) -> dict[str, Any] | None:
    """What the latest check's performance was judged against, its times parsed."""
    source = dict((run.metrics or {}).get("baseline_source") or {}) if run else {}
    if not source:
        return None
    for end in ("start", "end"):
        if source.get(end):
            source[end] = parse_datetime(source[end])
    return source


TEST_LABELS = {
    "ks": "KS",
    "chisquare": "chi-square",
    "psi": "PSI",
    "wasserstein": "Wasserstein",
    "jensenshannon": "Jensen-Shannon",
}
EFFECTS = {"wasserstein": "wasserstein", "jensenshannon": "jensenshannon"}


def drift_rows(columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The drift table's rows: each column's result plus which test gave its p-value and
    which effect size its verdict compared with its threshold (``drift._verdict``:
    drifted iff p < the p-value threshold and effect >= the effect threshold)."""
    rows = []
    for column in columns:
        effect = EFFECTS.get(column.get("test") or "", "psi")
        rows.append(
            {
                **column,
                "test_label": TEST_LABELS.get(column.get("test") or "", column.get("test")),
                "p_test_label": TEST_LABELS.get(column.get("p_value_test") or "", ""),
                "effect_label": TEST_LABELS[effect],
                "effect_value": column.get(effect),
            }
        )
    return rows


def _output_rows(run: CheckRun) -> list[dict[str, Any]]:
    return [
        {"part": part, "reason": out.get("reason"), "rows": drift_rows(out.get("columns", []))}
        for part, out in (run.output_drift or {}).items()
    ]


def _check_status_context(request: HttpRequest, model: Any, monitor: Any) -> dict[str, Any]:
    """The checks of ``monitor`` still queued or running: the dashboard polls while any."""
    pending = (
        list(
            selectors.check_list(user=request.user, monitor=monitor).filter(
                status__in=ACTIVE_JOB_STATUSES
            )[:5]
        )
        if monitor is not None
        else []
    )
    return {"model": model, "monitor": monitor, "pending_runs": pending}


@login_required
def check_status(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    """htmx polling target: the "check running" notice while a check of the monitor is
    queued or running; once none is, an empty notice and ``HX-Refresh`` so the page
    reloads with the finished check (and, having nothing pending, polls no more)."""
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    monitor = or_404(selectors.monitor_get, user=request.user, model=model, pk=pk)
    context = _check_status_context(request, model, monitor)
    response = render(request, "monitoring/_check_status.html", context)
    if not context["pending_runs"] and request.htmx:
        response["HX-Refresh"] = "true"
    return response


@login_required
def alerts_fragment(request: HttpRequest, name: str) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    return render(request, "monitoring/_alerts.html", _alerts_context(request, model))


@login_required
@require_POST
def alert_action(request: HttpRequest, name: str, pk: int, action: str) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    alert = or_404(selectors.alert_get, user=request.user, pk=pk)
    if alert.registered_model_id != model.pk:
        raise Http404("no such alert")
    try:
        if action == "acknowledge":
            services.alert_acknowledge(actor=request.user, alert=alert)
        else:
            services.alert_resolve(
                actor=request.user, alert=alert, comment=request.POST.get("comment", "")[:2000]
            )
    except DomainError as exc:
        if exc.status == 403:
            return error_response(exc)
        messages.error(request, exc.message)
    if request.htmx:
        return alerts_fragment(request, name)
    return redirect(reverse("monitoring:dashboard", args=[model.name]))


@login_required
@require_POST
def run_now(request: HttpRequest, name: str, pk: int) -> HttpResponse:
    model = or_404(registry_selectors.model_get, user=request.user, name=name)
    monitor = or_404(selectors.monitor_get, user=request.user, model=model, pk=pk)
    try:
        services.check_run_request(actor=request.user, monitor=monitor)
        messages.success(request, "Check queued; it appears here when a worker has run it.")
    except DomainError as exc:
        if exc.status == 403:
            return error_response(exc)
        messages.error(request, exc.message)
    return redirect(reverse("monitoring:dashboard", args=[model.name]) + f"?monitor={monitor.pk}")


def version_panel(request: HttpRequest, version: Any) -> dict[str, Any] | None:
    """The version page's "Monitoring" card: its monitors, active alerts, a link."""
    monitors = list(selectors.monitor_list(user=request.user).filter(version=version))
    alerts = list(
        selectors.alert_list(user=request.user).filter(
            monitor__version=version, status__in=ACTIVE_ALERT_STATUSES
        )[:10]
    )
    return {
        "id": "monitoring",
        "title": "Monitoring",
        "template": "monitoring/_version_panel.html",
        "version": version,
        "monitors": monitors,
        "alerts": alerts,
        "batches": version.prediction_batches.count(),
    }


def home_section(request: HttpRequest) -> dict[str, Any] | None:
    alerts = list(
        selectors.alert_list(user=request.user).filter(status__in=ACTIVE_ALERT_STATUSES)[:10]
    )
    monitors = list(selectors.monitor_list(user=request.user)[:20])
    if not alerts and not monitors:
        return None
    return {
        "id": "monitoring",
        "title": "Monitoring",
        "template": "monitoring/_home.html",
        "alerts": alerts,
        "monitors": monitors,
    }
