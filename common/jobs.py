"""The one writer of ``BackgroundJob.status``.

Allowed transitions::

    queued  -> running            (claim: a worker takes the job)
    running -> succeeded | failed (the job's service finished / gave up)
    running -> queued             (retry after an error, or the sweep found its
                                   worker dead: heartbeat older than the limit)
    queued  -> failed             (the sweep gives up on a job that keeps dying)

Every write is a conditional UPDATE on the expected old state (and, for a
running job, on its attempt number), so a late message or a worker that comes
back from the dead cannot overwrite a newer outcome: its UPDATE matches no row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, TypeVar

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from common.models import BackgroundJob, JobStatus

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=BackgroundJob)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


def _send(job: BackgroundJob, countdown: int | None = None) -> None:
    current_app.send_task(job.task_name, args=[job.pk], countdown=countdown)


def job_enqueue(job: BackgroundJob, *, countdown: int | None = None) -> None:
    """Send the job's id to the broker once the surrounding transaction commits."""
    transaction.on_commit(lambda: _send(job, countdown))


def job_claim(model: type[J], job_id: int) -> J | None:
    """Take a queued job; None when it is gone, finished or running elsewhere."""
    now = timezone.now()
    claimed = model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
    )
    if not claimed:
        return None
    return model.objects.get(pk=job_id)


def _running(job: BackgroundJob) -> Any:
    return type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts)


def job_heartbeat(job: BackgroundJob, *, log: str = "") -> bool:
    """Tell the sweep this job is alive; False if it was taken away from us."""
    changes: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if log:
        job.log = (job.log + log + "\n")[-20000:]
        changes["log"] = job.log
    return bool(_running(job).update(**changes))


class JobLost(Exception):
    """This attempt no longer owns the job (the sweep requeued it); drop its result."""


def job_finish(job: BackgroundJob, *, log: str = "") -> None:
    """Mark a running job succeeded, inside the transaction that stores its result.

    Raises ``JobLost`` when this attempt no longer owns the job, which rolls the
    caller's transaction back: only the owning attempt may record an outcome.
    """
    if log:
        job.log = (job.log + log + "\n")[-20000:]
    updated = _running(job).update(
        status=JobStatus.SUCCEEDED, finished_at=timezone.now(), log=job.log, error=""
    )
    if not updated:
        raise JobLost(f"{type(job).__name__} {job.pk} attempt {job.attempts} lost its claim")
    job.status = JobStatus.SUCCEEDED


def job_fail(job: BackgroundJob, *, error: str, retry: bool) -> str:
    """Record an error; requeue with backoff while attempts remain, else fail for good.

    Returns the new status. On final failure the job's ``failure_handler`` runs
    in the same transaction so the domain row leaves its in-between state.
    """
    error = error[-4000:]
    with transaction.atomic():
        if retry and job.attempts < settings.JOB_MAX_ATTEMPTS:
            if _running(job).update(status=JobStatus.QUEUED, error=error, queued_at=timezone.now()):
                job_enqueue(job, countdown=min(300, 10 * 2 ** (job.attempts - 1)))
            return JobStatus.QUEUED
        if _running(job).update(status=JobStatus.FAILED, error=error, finished_at=timezone.now()):
            job.status, job.error = JobStatus.FAILED, error
            _call_failure_handler(job)
        return JobStatus.FAILED


def _call_failure_handler(job: BackgroundJob) -> None:
    if job.failure_handler:
        import_string(job.failure_handler)(job=job)


def job_models() -> Iterator[type[BackgroundJob]]:
    for model in apps.get_models():
        if issubclass(model, BackgroundJob):
            yield model


def requeue_stale_jobs() -> dict[str, int]:
    """Find jobs whose worker died or whose message was lost, and act on them.

    - running with a heartbeat older than JOB_STALE_AFTER_SECONDS: its worker is
      gone. Requeue it if it has attempts left, else fail it.
    - queued for longer than that: the broker may have lost the message. Send
      the id again; a duplicate is harmless because claiming is conditional.

    Each row is claimed with a conditional UPDATE, so two sweeps never act
    twice on the same job.
    """
    stale_before = timezone.now() - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    counts = {"requeued": 0, "failed": 0, "resent": 0}
    for model in job_models():
        for job in model.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before):
            with transaction.atomic():
                if job.attempts >= settings.JOB_MAX_ATTEMPTS:
                    if _running(job).update(
                        status=JobStatus.FAILED,
                        error="The worker running this job was lost too many times.",
                        finished_at=timezone.now(),
                    ):
                        job.status = JobStatus.FAILED
                        job.error = "The worker running this job was lost too many times."
                        _call_failure_handler(job)
                        counts["failed"] += 1
                elif _running(job).update(status=JobStatus.QUEUED, queued_at=timezone.now()):
                    job_enqueue(job)
                    counts["requeued"] += 1
        for job in model.objects.filter(status=JobStatus.QUEUED, queued_at__lt=stale_before):
            if model.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
                queued_at=timezone.now()
            ):
                _send(job)
                counts["resent"] += 1
    if any(counts.values()):
        logger.warning("stale job sweep: %s", counts)
    return counts
