"""Governance's entries on a model's timeline (``registry.timeline``): each change of
a review's state (submitted, approved, rejected, ...) and each sign-off."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from governance.models import ReviewTransition, SignOff
from registry.models import RegisteredModel
from registry.timeline import TimelineEntry, bounded


def review_entries(
    *,
    user: Any,
    model: RegisteredModel,
    kinds: tuple[str, ...],
    since: Any,
    before: Any,
    limit: int,
) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    if "review" in kinds:
        transitions = ReviewTransition.objects.visible_to(user, "view").filter(
            review__version__registered_model=model
        )
        for t in bounded(
            transitions.select_related("review__version"),
            "occurred_at",
            since=since,
            before=before,
            limit=limit,
        ):
            number = t.review.version.number
            entries.append(
                TimelineEntry(
                    kind="review",
                    id=t.pk,
                    at=t.occurred_at,
                    title=f"Review of v{number}: {t.from_state} → {t.to_state}".replace("_", " "),
                    url=reverse("governance:review", args=[model.name, number]),
                    status=t.to_state,
                    actor=t.actor,
                    version=number,
                    detail=t.reason[:300],
                )
            )
    if "signoff" in kinds:
        signoffs = SignOff.objects.visible_to(user, "view").filter(
            review__version__registered_model=model
        )
        for s in bounded(
            signoffs.select_related("review__version", "signer"),
            "signed_at",
            since=since,
            before=before,
            limit=limit,
        ):
            number = s.review.version.number
            entries.append(
                TimelineEntry(
                    kind="signoff",
                    id=s.pk,
                    at=s.signed_at,
                    title=f"{s.get_role_display()} {s.get_decision_display().lower()} v{number}",
                    url=reverse("governance:review", args=[model.name, number]) + "#signoffs",
                    status=s.decision if s.valid else "invalidated",
                    actor=s.signer.get_username(),
                    version=number,
                    detail=s.comment[:300],
                    extra={"role": s.role, "meaning": s.meaning, "valid": s.valid},
                )
            )
    return entries
