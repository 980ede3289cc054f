"""A model's loop on one time axis: alerts, retraining runs, versions, reviews,
sign-offs, deployments and rollbacks, newest first, each linking to its page.

The registry knows only versions; the other apps add their kinds through
``register_timeline_source`` in their ``AppConfig.ready`` (the hook pattern of
``registry.gates``), so no app imports a higher one. A source is called as
``source(user=, model=, kinds=, since=, before=, limit=)`` and returns at most
``limit`` ``TimelineEntry`` rows of the kinds it owns that are in ``kinds``, with
``since <= at <= before`` (either bound may be None), newest first. A source starts
its query from ``visible_to(user, "view")``: what the user may not see never
reaches the merged list, whatever the model-level check above it decided.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse

from common.errors import DomainError
from registry.models import ModelVersion, RegisteredModel

# Every kind, in the order a legend shows them (each owned by exactly one source).
KINDS = (
    "alert",
    "retraining_run",
    "version",
    "review",
    "signoff",
    "deployment",
    "rollback",
)
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    id: int  # the row's primary key in the kind's own table
    at: dt.datetime
    title: str
    url: str  # the page that shows it
    status: str = ""
    actor: str = ""
    version: int | None = None  # the version it concerns, when there is one
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[dt.datetime, str, int]:
        """Total order, newest first when sorted in reverse (ties broken by kind, id)."""
        return (self.at, self.kind, self.id)

    @property
    def cursor(self) -> str:
        return f"{self.at.isoformat()}~{self.kind}~{self.id}"


Source = Callable[..., Iterable[TimelineEntry]]
_sources: list[Source] = []


def register_timeline_source(source: Source) -> None:
    if all(s is not source for s in _sources):
        _sources.append(source)


def bounded(
    queryset: QuerySet,
    field_name: str,
    *,
    since: Any,
    before: Any,
    limit: int,
) -> QuerySet:
    """``queryset`` between the bounds on ``field_name``, newest first, ``limit`` rows:
    the filter every source applies the same way."""
    if since is not None:
        queryset = queryset.filter(**{f"{field_name}__gte": since})
    if before is not None:
        queryset = queryset.filter(**{f"{field_name}__lte": before})
    return queryset.order_by(f"-{field_name}", "-pk")[:limit]


def parse_kinds(raw: Iterable[str] | None) -> tuple[str, ...]:
    """``["alert,version", "rollback"]`` → the kinds, checked; empty → every kind."""
    names = [k.strip() for item in (raw or []) for k in str(item).split(",") if k.strip()]
    unknown = sorted(set(names) - set(KINDS))
    if unknown:
        raise DomainError(
            "invalid",
            f"Unknown timeline kind(s): {', '.join(unknown)}. Known: {', '.join(KINDS)}.",
            details={"kind": unknown},
            status=400,
        )
    return tuple(k for k in KINDS if k in names) or KINDS


def parse_cursor(raw: str | None) -> tuple[dt.datetime, str, int] | None:
    if not raw:
        return None
    try:
        at_text, kind, pk = raw.split("~")
        at = dt.datetime.fromisoformat(at_text)
        if at.tzinfo is None or kind not in KINDS:
            raise ValueError
        return (at, kind, int(pk))
    except ValueError:
        raise DomainError(
            "invalid",
            "The cursor is not one this endpoint gave out; start again without it.",
            details={"cursor": raw},
            status=400,
        ) from None


def timeline_list(
    *,
    user: Any,
    model: RegisteredModel,
    kinds: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    cursor: tuple[dt.datetime, str, int] | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
) -> tuple[list[TimelineEntry], bool]:
    """The model's entries of ``kinds`` since ``since``, newest first, strictly after
    ``cursor`` in that order, at most ``limit``; and whether more follow.

    ``model`` comes from ``registry.selectors.model_get`` (visible to ``user``).
    Each source returns its ``limit + 1`` newest rows not newer than the cursor's
    time; merging those and cutting at ``limit`` gives the exact page, because
    no entry of the page can be beyond any source's ``limit + 1``-th row. Rows
    that share the cursor's timestamp are disambiguated by (kind, id), which is
    why each source fetches a few more than ``limit + 1``.
    """
    kinds = tuple(kinds or KINDS)
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    before = cursor[0] if cursor else None
    entries: list[TimelineEntry] = []
    for source in _sources:
        entries.extend(
            source(user=user, model=model, kinds=kinds, since=since, before=before, limit=limit + 8)
        )
    entries = [e for e in entries if e.kind in kinds]
    if cursor is not None:
        entries = [e for e in entries if e.key < cursor]
    entries.sort(key=lambda e: e.key, reverse=True)
    return entries[:limit], len(entries) > limit


def version_entries(
    *,
    user: Any,
    model: RegisteredModel,
    kinds: tuple[str, ...],
    since: Any,
    before: Any,
    limit: int,
) -> list[TimelineEntry]:
    """The registry's own kind: each version, at its registration."""
    if "version" not in kinds:
        return []
    versions = ModelVersion.objects.visible_to(user, "view").filter(registered_model=model)
    rows = bounded(
        versions.select_related("created_by", "parent"),
        "created_at",
        since=since,
        before=before,
        limit=limit,
    )
    return [
        TimelineEntry(
            kind="version",
            id=v.pk,
            at=v.created_at,
            title=f"v{v.number} registered",
            url=reverse("registry:version-detail", args=[model.name, v.number]),
            status=v.status,
            actor=v.created_by.get_username() if v.created_by_id else "",
            version=v.number,
            detail=f"v{v.parent.number} → v{v.number}" if v.parent_id else "",
        )
        for v in rows
    ]


register_timeline_source(version_entries)
