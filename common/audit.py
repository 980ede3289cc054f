"""The audit trail: the one function that appends to it, and its hash algorithm.

Algorithm (what ``audit_export`` documents for auditors, reproducible with any
SHA-256 and JSON library):

    payload = {"seq", "occurred_at", "actor_id", "actor", "action", "object_type",
               "object_id", "object_repr", "before", "after", "request_id", "prev_hash"}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False).encode("utf-8")
    hash = sha256(canonical).hexdigest()

``occurred_at`` is ISO 8601 in UTC with microseconds (``2026-01-31T12:00:00.000000+00:00``).
The first event's ``prev_hash`` is 64 zeros; every later one holds the previous
event's ``hash``. ``before``/``after`` are normalised to plain JSON before they
are hashed and stored, so what is read back hashes the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from common.context import current_request_id
from common.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "before",
    "after",
    "request_id",
    "prev_hash",
)


@dataclass(frozen=True)
class SystemActor:
    """An actor that is not a person: a Celery job, beat, a migration."""

    name: str
    pk: None = None
    is_authenticated: bool = False

    def __str__(self) -> str:
        return f"system:{self.name}"


def to_plain_json(value: Any) -> Any:
    """Normalise to what json.loads(json.dumps(...)) gives; NaN/inf become None."""

    def clean(obj: Any) -> Any:
        if isinstance(obj, float) and not math.isfinite(obj):
            return None
        if isinstance(obj, dict):
            return {str(k): clean(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [clean(v) for v in obj]
        return obj

    return json.loads(json.dumps(clean(value), cls=DjangoJSONEncoder, allow_nan=False))


def format_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def event_payload(event: AuditEvent) -> dict[str, Any]:
    payload = {name: getattr(event, name) for name in HASHED_FIELDS}
    payload["occurred_at"] = format_timestamp(event.occurred_at)
    return payload


def compute_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(payload)).hexdigest()


def snapshot(instance: models.Model, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Plain-JSON picture of some fields, for an event's before/after."""
    data = {}
    for name in fields:
        field = instance._meta.get_field(name)
        value = getattr(instance, field.attname)
        data[name] = value
    return to_plain_json(data)


def ensure_chain_head(using: str = "default") -> None:
    """Create the head row if it is missing, continuing from the last stored event."""
    last = AuditEvent.objects.using(using).order_by("-seq").only("seq", "hash").first()
    AuditChainHead.objects.using(using).get_or_create(
        pk=1,
        defaults={"seq": last.seq if last else 0, "last_hash": last.hash if last else GENESIS_HASH},
    )


def _actor_identity(actor: Any) -> tuple[int | None, str]:
    if actor is None:
        return None, "system"
    if isinstance(actor, SystemActor):
        return None, str(actor)
    return actor.pk, actor.get_username()


def _check_deferred_foreign_keys() -> None:
    """Run the transaction's pending foreign-key checks now, before the head lock.

    PostgreSQL checks Django's foreign keys (DEFERRABLE INITIALLY DEFERRED) at
    commit, taking a KEY SHARE lock on each referenced row. Left there, they would
    wait while this transaction holds the chain head: a transaction that holds a
    referenced row FOR UPDATE and then audits would wait for the head, and neither
    could finish (a deadlock). Checked here, the wait happens before the head is
    taken. Later writes in the transaction are deferred again, as Django expects.
    """
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction.

    Lock order: call this *after* taking every other row lock the service
    needs; it takes the chain-head lock last and holds it until commit (and
    runs the transaction's deferred foreign-key checks, which lock the rows
    they reference, just before).
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_repr = object_repr or str(obj)
    actor_id, actor_name = _actor_identity(actor)
    with transaction.atomic():
        _check_deferred_foreign_keys()
        # UPDATE first: it takes the lock before we read the tip.
        if not AuditChainHead.objects.filter(pk=1).update(seq=F("seq") + 1):
            ensure_chain_head()
            AuditChainHead.objects.filter(pk=1).update(seq=F("seq") + 1)
        head = AuditChainHead.objects.get(pk=1)
        event = AuditEvent(
            seq=head.seq,
            occurred_at=timezone.now(),
            actor_id=actor_id,
            actor=actor_name[:150],
            action=action,
            object_type=object_type,
            object_id=object_id[:64],
            object_repr=object_repr[:200],
            before=to_plain_json(before) if before is not None else None,
            after=to_plain_json(after) if after is not None else None,
            request_id=current_request_id(),
            prev_hash=head.last_hash,
        )
        event.hash = compute_hash(event_payload(event))
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=1).update(last_hash=event.hash)
    return event
