"""Monitoring reads with rules: every query starts from ``visible_to``."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from common.errors import DomainError
from common.permissions import get_visible
from monitoring import performance
from monitoring.models import Alert, CheckRun, Monitor
from monitoring.windows import labelled_rows
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel


def monitor_list(*, user: Any, model: RegisteredModel | None = None) -> QuerySet[Monitor]:
    qs = Monitor.objects.visible_to(user, "view").select_related("registered_model", "version")
    if model is not None:
        qs = qs.filter(registered_model=model)
    return qs.order_by("registered_model__name", "name")


def monitor_get(*, user: Any, model: RegisteredModel, pk: Any) -> Monitor:
    return get_visible(
        Monitor.objects.select_related("registered_model", "version"),
        user,
        f"Monitor {pk} of {model.name}",
        registered_model=model,
        pk=pk,
    )


def check_list(*, user: Any, monitor: Monitor) -> QuerySet[CheckRun]:
    return (
        CheckRun.objects.visible_to(user, "view")
        .filter(monitor=monitor)
        .select_related("version")
        .order_by("-window_end")
    )


def alert_list(*, user: Any) -> QuerySet[Alert]:
    return Alert.objects.visible_to(user, "view").select_related(
        "registered_model", "monitor", "acknowledged_by", "resolved_by"
    )


def alert_get(*, user: Any, pk: Any) -> Alert:
    return get_visible(
        Alert.objects.select_related("registered_model", "monitor"), user, f"Alert {pk}", pk=pk
    )


def version_by_ref(*, user: Any, model: RegisteredModel, ref: str) -> ModelVersion:
    """A version by number ("3") or alias ("champion")."""
    if str(ref).isdigit():
        return registry_selectors.version_get(user=user, model=model, number=int(ref))
    return registry_selectors.alias_resolve(user=user, model_name=model.name, alias=str(ref))


def ab_comparison(
    *,
    user: Any,
    model: RegisteredModel,
    a: str,
    b: str,
    metric: str,
    since: Any = None,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Compare two versions serving side by side on their labelled predictions."""
    if metric not in performance.metric_names(model.task):
        raise DomainError(
            "invalid",
            f"Metric {metric!r} does not apply to a {model.task} model.",
            details={"metrics": list(performance.metric_names(model.task))},
        )
    if not 0 < alpha < 1:
        raise DomainError("invalid", "alpha must be in (0, 1).")
    frames = {}
    versions = {}
    classes = {}
    for arm, ref in (("a", a), ("b", b)):
        version = version_by_ref(user=user, model=model, ref=ref)
        batches = version.prediction_batches.all()
        if since is not None:
            batches = batches.filter(last_at__gte=since)
        frames[arm] = labelled_rows(model, version, list(batches))
        versions[arm] = version.number
        classes[arm] = version.classes
    result = performance.ab_compare(
        metric,
        frames["a"],
        frames["b"],
        alpha=alpha,
        classes_a=classes["a"],
        classes_b=classes["b"],
    )
    result.update(version_a=versions["a"], version_b=versions["b"])
    return result
