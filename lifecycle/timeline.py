"""Lifecycle's entries on a model's timeline (``registry.timeline``): retraining runs,
deployments (every strategy) and rollbacks (automatic or by a person)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from lifecycle import transitions as t
from lifecycle.models import Deployment, EnvironmentTransition, RetrainingRun
from registry.models import RegisteredModel
from registry.timeline import TimelineEntry, bounded


def lifecycle_entries(
    *,
    user: Any,
    model: RegisteredModel,
    kinds: tuple[str, ...],
    since: Any,
    before: Any,
    limit: int,
) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    if "retraining_run" in kinds:
        runs = RetrainingRun.objects.visible_to(user, "view").filter(registered_model=model)
        for run in bounded(
            runs.select_related("parent", "version", "requested_by"),
            "queued_at",
            since=since,
            before=before,
            limit=limit,
        ):
            candidate = f" → v{run.version.number}" if run.version_id else ""
            entries.append(
                TimelineEntry(
                    kind="retraining_run",
                    id=run.pk,
                    at=run.queued_at,
                    title=f"Retraining run #{run.pk} ({run.get_trigger_display()}): "
                    f"v{run.parent.number}{candidate}",
                    url=reverse("lifecycle:retraining-run", args=[model.name, run.pk]),
                    status=run.outcome if run.status == "succeeded" else run.status,
                    actor=run.requested_by.get_username() if run.requested_by_id else "system",
                    version=run.version.number if run.version_id else None,
                    detail=(run.outcome_reason or run.reason)[:300],
                    extra={"trigger": run.trigger, "alert": run.alert_id},
                )
            )
    page = reverse("registry:model-detail", args=[model.name])
    if "deployment" in kinds:
        deployments = Deployment.objects.visible_to(user, "view").filter(
            environment__registered_model=model
        )
        for d in bounded(
            deployments.select_related("environment", "version", "requested_by"),
            "queued_at",
            since=since,
            before=before,
            limit=limit,
        ):
            entries.append(
                TimelineEntry(
                    kind="deployment",
                    id=d.pk,
                    at=d.queued_at,
                    title=f"Deploy v{d.version.number} to {d.environment.name} "
                    f"({d.get_strategy_display().split(' (')[0].lower()})",
                    url=f"{page}#deployment-{d.pk}",
                    status=d.state,
                    actor=d.requested_by.get_username(),
                    version=d.version.number,
                    detail=d.reason[:300],
                    extra={"environment": d.environment.name, "strategy": d.strategy},
                )
            )
    if "rollback" in kinds:
        rollbacks = EnvironmentTransition.objects.visible_to(user, "view").filter(
            environment__registered_model=model, event=t.ROLLED_BACK
        )
        for r in bounded(
            rollbacks.select_related("environment", "stable_before", "stable_after", "deployment"),
            "occurred_at",
            since=since,
            before=before,
            limit=limit,
        ):
            after = r.stable_after.number if r.stable_after_id else None
            entries.append(
                TimelineEntry(
                    kind="rollback",
                    id=r.pk,
                    at=r.occurred_at,
                    title=f"Rolled back in {r.environment.name}"
                    + (f" to v{after}" if after else ""),
                    url=f"{page}#deployment-{r.deployment_id}" if r.deployment_id else page,
                    status="rolled_back",
                    actor=r.actor_name,
                    version=after,
                    detail=r.reason[:300],
                    extra={"environment": r.environment.name, "deployment": r.deployment_id},
                )
            )
    return entries
