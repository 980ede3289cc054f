"""A model's data policy: retention of its logged batches, dropped and hashed columns.

Reads (``rules_for``, ``data_policy_get``) and the one write (``data_policy_update``,
``manage`` right, audited). A change applies to batches posted afterwards: stored
batches keep the form they were stored in (the retention sweep deletes them in
time), and drift windows leave out batches stored under other rules (see
monitoring/privacy.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.audit import audit_record
from common.errors import DomainError, conflict
from common.permissions import require
from monitoring.models import DataPolicy
from monitoring.privacy import RESERVED, ColumnRules
from registry.models import ModelVersion, RegisteredModel

MAX_RETENTION_DAYS = 36500
_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")


@dataclass(frozen=True)
class DataPolicyView:
    """What the API and the admin show: the stored row, or the defaults."""

    model: RegisteredModel
    retention_days: int | None
    dropped_columns: list[str]
    hashed_columns: list[str]
    updated_by: Any
    updated_at: Any

    @property
    def effective_retention_days(self) -> int:
        return self.retention_days or settings.MONITORING_RETENTION_DAYS


def _hash_key() -> bytes | None:
    key = settings.MONITORING_HASH_KEY
    return key.encode("utf-8") if key else None


def rules_for(*, model_id: int) -> ColumnRules:
    """The column rules of a model's prediction batches (no row: none)."""
    row = (
        DataPolicy.objects.filter(registered_model_id=model_id)
        .values_list("dropped_columns", "hashed_columns")
        .first()
    )
    if row is None or not (row[0] or row[1]):
        return ColumnRules()
    return ColumnRules(dropped=frozenset(row[0]), hashed=frozenset(row[1]), key=_hash_key())


def refuse_without_key(rules: ColumnRules) -> None:
    """Ingestion: never store a column that should be hashed when no key is configured."""
    if rules.missing_key:
        raise DomainError(
            "hash_key_missing",
            "This model's data policy hashes columns, but the server has no "
            "MONITORING_HASH_KEY: the batch was not stored. Try again once it is configured.",
            details={"hashed_columns": sorted(rules.hashed)},
            status=503,
        )


def retention_days_for(*, model_id: int) -> int:
    days = (
        DataPolicy.objects.filter(registered_model_id=model_id)
        .values_list("retention_days", flat=True)
        .first()
    )
    return days or settings.MONITORING_RETENTION_DAYS


def data_policy_get(*, model: RegisteredModel) -> DataPolicyView:
    """The model's policy; the caller fetched ``model`` through ``visible_to``."""
    row = DataPolicy.objects.filter(registered_model=model).select_related("updated_by").first()
    if row is None:
        return DataPolicyView(model, None, [], [], None, None)
    return DataPolicyView(
        model,
        row.retention_days,
        list(row.dropped_columns),
        list(row.hashed_columns),
        row.updated_by,
        row.updated_at,
    )


def _clean_columns(model: RegisteredModel, names: Any, what: str) -> list[str]:
    if names is None:
        return []
    if not isinstance(names, list) or len(names) > settings.MAX_DATASET_COLUMNS:
        raise DomainError("invalid", f"{what} must be a list of column names.")
    bad = [n for n in names if not isinstance(n, str) or not _NAME.match(n)]
    if bad:
        raise DomainError(
            "invalid",
            f"{what}: column names are 1-200 printable characters.",
            details={what: [str(b)[:80] for b in bad]},
        )
    reserved = sorted(set(names) & RESERVED)
    if reserved:
        raise DomainError(
            "invalid",
            f"{what}: {reserved} are not feature columns; only a version's inputs can be "
            "dropped or hashed.",
            details={what: reserved},
        )
    return sorted(set(names))


def _known_inputs(model: RegisteredModel) -> set[str] | None:
    """Every input any version of the model declares; None when none declares any."""
    names: set[str] = set()
    for signature in ModelVersion.objects.filter(registered_model=model).values_list(
        "signature", flat=True
    ):
        names.update(c["name"] for c in (signature or {}).get("inputs", []))
    return names or None


@transaction.atomic
def data_policy_update(
    *,
    actor: Any,
    model: RegisteredModel,
    retention_days: int | None,
    dropped_columns: list[str] | None,
    hashed_columns: list[str] | None,
) -> DataPolicyView:
    """Set the whole policy (a PUT). Applies to batches posted from now on."""
    require(actor, "manage", model)
    if retention_days is not None and (
        isinstance(retention_days, bool)
        or not isinstance(retention_days, int)
        or not 1 <= retention_days <= MAX_RETENTION_DAYS
    ):
        raise DomainError(
            "invalid",
            f"retention_days is a number of days from 1 to {MAX_RETENTION_DAYS}, or null for "
            f"the default ({settings.MONITORING_RETENTION_DAYS}).",
            details={"retention_days": retention_days},
        )
    dropped = _clean_columns(model, dropped_columns, "dropped_columns")
    hashed = _clean_columns(model, hashed_columns, "hashed_columns")
    both = sorted(set(dropped) & set(hashed))
    if both:
        raise DomainError(
            "invalid",
            f"A column is either dropped or hashed, not both: {both}.",
            details={"columns": both},
        )
    known = _known_inputs(model)
    unknown = sorted((set(dropped) | set(hashed)) - known) if known is not None else []
    if unknown:
        # A typo would silently leave personal data in the clear.
        raise DomainError(
            "unknown_columns",
            f"No version of {model.name} has the inputs {unknown}.",
            details={"unknown_columns": unknown, "inputs": sorted(known or [])},
        )
    if hashed and not _hash_key():
        raise conflict(
            "hash_key_missing",
            "Hashing columns needs MONITORING_HASH_KEY in the server's environment; "
            "it is not set, so nothing was changed.",
        )
    RegisteredModel.objects.select_for_update().get(pk=model.pk)
    row = DataPolicy.objects.filter(registered_model=model).first()
    before = (
        {
            "retention_days": row.retention_days,
            "dropped_columns": row.dropped_columns,
            "hashed_columns": row.hashed_columns,
        }
        if row
        else None
    )
    row = row or DataPolicy(registered_model=model)
    row.retention_days = retention_days
    row.dropped_columns = dropped
    row.hashed_columns = hashed
    row.updated_by = actor
    row.updated_at = timezone.now()
    row.save()
    audit_record(
        actor=actor,
        action="monitoring.data_policy.updated",
        obj=row,
        before=before,
        after={
            "retention_days": retention_days,
            "effective_retention_days": retention_days or settings.MONITORING_RETENTION_DAYS,
            "dropped_columns": dropped,
            "hashed_columns": hashed,
        },
    )
    return data_policy_get(model=model)
