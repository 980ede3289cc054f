"""Monitoring's entries on a model's timeline (``registry.timeline``): its alerts."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from monitoring.models import Alert
from registry.models import RegisteredModel
from registry.timeline import TimelineEntry, bounded


def alert_entries(
    *,
    user: Any,
    model: RegisteredModel,
    kinds: tuple[str, ...],
    since: Any,
    before: Any,
    limit: int,
) -> list[TimelineEntry]:
    """Each alert, at its opening (its status says what became of it)."""
    if "alert" not in kinds:
        return []
    alerts = Alert.objects.visible_to(user, "view").filter(registered_model=model)
    rows = bounded(
        alerts.select_related("monitor", "monitor__version", "last_run__version"),
        "opened_at",
        since=since,
        before=before,
        limit=limit,
    )
    page = reverse("monitoring:dashboard", args=[model.name])
    entries = []
    for a in rows:
        version = a.last_run.version if a.last_run and a.last_run.version_id else None
        entries.append(
            TimelineEntry(
                kind="alert",
                id=a.pk,
                at=a.opened_at,
                # A rollback's alert has no monitor: a deployment opened it.
                title=f"{a.get_kind_display()} alert opened"
                + (f" ({a.monitor.name})" if a.monitor else ""),
                url=f"{page}#alert-{a.pk}",
                status=a.status,
                version=version.number if version else None,
                detail=a.message[:300],
                extra={"alert_kind": a.kind, "occurrences": a.occurrences},
            )
        )
    return entries
