"""Retention of logged data: the daily sweep that deletes expired batches.

A prediction or label batch *expires* when it was stored (``created_at``, the
server's clock: callers' timestamps can be anything) more than the model's
retention period ago: ``DataPolicy.retention_days``, else
``MONITORING_RETENTION_DAYS``. The sweep deletes an expired batch's row (which
holds its summaries) and then its Parquet file, unless something still *needs*
it:

- an unfinished check (a ``CheckRun`` queued or running) needs the prediction
  batches of its monitor's version that overlap its window
  (``last_at >= window_start`` and ``first_at < window_end``, the rows a check
  reads, ``monitoring.windows``);
- an active alert (open or acknowledged) needs the same for the windows of its
  first and last check runs: the evidence behind it stays readable until it is
  resolved;
- an open review (a version in review; governance tells through
  ``registry.gates.held_version_ids``) needs every prediction batch of that
  version;
- label batches are needed as the checks read them: for each window above, the
  model's label batches stored after its earliest prediction less
  ``LABEL_CLOCK_SKEW`` (``monitoring.windows.labelled_rows``).

Each model's sweep is one transaction and one audit event
(``monitoring.retention.deleted``: the batches, the cutoff and what was kept
for a hold). Files are deleted after commit, and only when no other batch row
points at them (storage is content-addressed, so two identical batches share a
file).

Races: holds are read in the same transaction as the delete. A check requested
after that read and run before the commit may find a file already gone; its
attempt fails and its retry reads the window without the deleted batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from common.audit import SystemActor, audit_record
from common.models import JobStatus
from common.storage import delete_blob
from monitoring.choices import ACTIVE_ALERT_STATUSES
from monitoring.models import Alert, CheckRun, DataPolicy, LabelBatch, PredictionBatch
from monitoring.windows import LABEL_CLOCK_SKEW
from registry.gates import held_version_ids
from registry.models import RegisteredModel

logger = logging.getLogger(__name__)
SWEEPER = SystemActor("monitoring.retention")
# Batches of one kind deleted in one transaction (one audit event); a model with more
# gets up to MAX_ROUNDS transactions per sweep, and the next sweep continues.
MAX_BATCHES_PER_MODEL = 1000
MAX_ROUNDS = 20
LISTED = 100  # batch ids named in the audit event (the count is always exact)


def retention_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Beat (daily): delete every model's expired batches. Returns the counts deleted."""
    now = now or timezone.now()
    totals = {"models": 0, "prediction_batches": 0, "label_batches": 0}
    for model_id in _models_with_expired_batches(now):
        swept = False
        for _round in range(MAX_ROUNDS):
            deleted = retention_sweep_model(model_id=model_id, now=now)
            totals["prediction_batches"] += deleted["prediction_batches"]
            totals["label_batches"] += deleted["label_batches"]
            swept = swept or any(deleted.values())
            if max(deleted.values()) < MAX_BATCHES_PER_MODEL:
                break
        totals["models"] += int(swept)
    return totals


def _models_with_expired_batches(now: datetime) -> list[int]:
    days = DataPolicy.objects.filter(retention_days__isnull=False).values_list(
        "retention_days", flat=True
    )
    shortest = min([settings.MONITORING_RETENTION_DAYS, *(d for d in days if d)])
    oldest = now - timedelta(days=shortest)
    ids = set(
        PredictionBatch.objects.filter(created_at__lt=oldest)
        .values_list("version__registered_model_id", flat=True)
        .distinct()
    )
    ids.update(
        LabelBatch.objects.filter(created_at__lt=oldest)
        .values_list("registered_model_id", flat=True)
        .distinct()
    )
    return sorted(ids)


def _retention_days(model_id: int) -> int:
    days = (
        DataPolicy.objects.filter(registered_model_id=model_id)
        .values_list("retention_days", flat=True)
        .first()
    )
    return days or settings.MONITORING_RETENTION_DAYS


def _held_windows(model_id: int) -> list[tuple[int, datetime, datetime]]:
    """(version id, start, end) of every window an unfinished check or an active alert reads."""
    windows = set(
        CheckRun.objects.filter(
            monitor__registered_model_id=model_id,
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING],
        ).values_list("monitor__version_id", "window_start", "window_end")
    )
    for field in ("first_run", "last_run"):
        windows.update(
            Alert.objects.filter(
                registered_model_id=model_id,
                status__in=ACTIVE_ALERT_STATUSES,
                **{f"{field}__isnull": False},
            ).values_list("monitor__version_id", f"{field}__window_start", f"{field}__window_end")
        )
    return sorted(windows)


def _held_predictions(model_id: int) -> Q:
    """The prediction batches of ``model_id`` that a hold needs, as one filter."""
    held = Q(version_id__in=held_version_ids()) & Q(version__registered_model_id=model_id)
    for version_id, start, end in _held_windows(model_id):
        held |= Q(version_id=version_id, last_at__gte=start, first_at__lt=end)
    return held


def _label_floor(model_id: int, held: Q) -> datetime | None:
    """Label batches stored at or after this are needed by a held prediction window."""
    earliest = PredictionBatch.objects.filter(held).aggregate(Min("first_at"))["first_at__min"]
    return None if earliest is None else earliest - LABEL_CLOCK_SKEW


def retention_sweep_model(*, model_id: int, now: datetime | None = None) -> dict[str, int]:
    """Delete one model's expired batches that nothing holds; one audit event."""
    now = now or timezone.now()
    days = _retention_days(model_id)
    cutoff = now - timedelta(days=days)
    with transaction.atomic():
        # The model row lock serialises two sweeps of one model (a beat and a manual run).
        model = RegisteredModel.objects.select_for_update().filter(pk=model_id).first()
        if model is None:
            return {"prediction_batches": 0, "label_batches": 0}
        held = _held_predictions(model_id)
        expired = PredictionBatch.objects.filter(
            version__registered_model_id=model_id, created_at__lt=cutoff
        )
        predictions = list(
            expired.exclude(held)
            .order_by("created_at", "pk")
            .values("pk", "batch_id", "storage_key", "version__number")[:MAX_BATCHES_PER_MODEL]
        )
        kept_predictions = expired.filter(held).count()
        labels_expired = LabelBatch.objects.filter(
            registered_model_id=model_id, created_at__lt=cutoff
        )
        floor = _label_floor(model_id, held)
        labels_query = (
            labels_expired.filter(created_at__lt=floor) if floor is not None else labels_expired
        )
        labels = list(
            labels_query.order_by("created_at", "pk").values("pk", "batch_id", "storage_key")[
                :MAX_BATCHES_PER_MODEL
            ]
        )
        kept_labels = labels_expired.count() - labels_query.count()
        if not predictions and not labels:
            return {"prediction_batches": 0, "label_batches": 0}
        PredictionBatch.objects.filter(pk__in=[b["pk"] for b in predictions]).delete()
        LabelBatch.objects.filter(pk__in=[b["pk"] for b in labels]).delete()
        audit_record(
            actor=SWEEPER,
            action="monitoring.retention.deleted",
            obj=model,
            after={
                "retention_days": days,
                "cutoff": cutoff,
                "prediction_batches": len(predictions),
                "label_batches": len(labels),
                "prediction_batch_ids": [
                    f"v{b['version__number']}:{b['batch_id']}" for b in predictions[:LISTED]
                ],
                "label_batch_ids": [b["batch_id"] for b in labels[:LISTED]],
                "kept_for_holds": {
                    "prediction_batches": kept_predictions,
                    "label_batches": kept_labels,
                },
            },
        )
        keys = {b["storage_key"] for b in predictions} | {b["storage_key"] for b in labels}
        transaction.on_commit(lambda: _delete_unreferenced(keys))
    return {"prediction_batches": len(predictions), "label_batches": len(labels)}


def _delete_unreferenced(keys: Iterable[str]) -> None:
    """Delete the files no batch row points at any more (content-addressed: shared)."""
    keys = set(keys)
    still = set(
        PredictionBatch.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True)
    ) | set(LabelBatch.objects.filter(storage_key__in=keys).values_list("storage_key", flat=True))
    for key in sorted(keys - still):
        try:
            delete_blob(key)
        except OSError:  # the next identical batch stores it again; nothing refers to it now
            logger.exception("could not delete expired batch file %s", key)
