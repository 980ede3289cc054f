"""The one writer of ``BackgroundJob.status``, and the one runner of every job.

Allowed transitions::

    queued  -> running            (claim: a worker takes the job)
    running -> succeeded | failed (the job's service finished / gave up, or the
                                   sweep gives up on a job that keeps dying)
    running -> queued             (retry after an error, or the sweep found its
                                   worker dead: heartbeat older than the limit)

Every write is a conditional UPDATE on the expected old state (and, for a
running job, on its attempt number), so a late message or a worker that comes
back from the dead cannot overwrite a newer outcome: its UPDATE matches no row.

A task runs its job with ``job_run``: claim, a heartbeat thread while the
service computes, then the outcome (finished by the service itself, or failed /
retried here). The beat sweep ``requeue_stale_jobs`` requeues a job whose
heartbeat stopped (its worker died) and resends a queued job whose message may
have been lost. The whole life of a job is described in docs/jobs.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from common import telemetry
from common.models import BackgroundJob, JobStatus

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=BackgroundJob)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


def _send(job: BackgroundJob, countdown: int | None = None) -> None:
    current_app.send_task(job.task_name, args=[job.pk], countdown=countdown)


def job_enqueue(job: BackgroundJob, *, countdown: int | None = None) -> None:
    """Send the job's id to the broker once the surrounding transaction commits.

    The row is committed first, so a message can never name a job that does not
    exist; the opposite loss (the process dies, or the broker refuses the
    message, between the commit and the send) leaves a queued row without a
    message, which the sweep resends after JOB_RESEND_AFTER_SECONDS. Hence
    ``robust``: a broker error here is logged, not raised into a request whose
    change is already committed.
    """
    transaction.on_commit(lambda: _send(job, countdown), robust=True)


def job_claim(model: type[J], job_id: int) -> J | None:
    """Take a queued job; None when it is gone, finished or running elsewhere."""
    now = timezone.now()
    claimed = model._default_manager.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        finished_at=None,
    )
    if not claimed:
        return None
    return model._default_manager.get(pk=job_id)


def _running(job: BackgroundJob) -> Any:
    return _attempt(type(job), job.pk, job.attempts)


def _attempt(model: type[BackgroundJob], pk: Any, attempts: int) -> Any:
    """The job's row while this attempt still owns it (running, same attempt number)."""
    return model._default_manager.filter(pk=pk, status=JobStatus.RUNNING, attempts=attempts)


class JobLost(Exception):
    """This attempt no longer owns the job (the sweep requeued it); drop its result."""


def job_progress(job: BackgroundJob, *, log: str) -> bool:
    """Append a progress line to a running job's log; False if this attempt lost it.

    Liveness is the heartbeat thread's (``job_run``); a long loop calls this only
    to leave a line in the log and to stop early once its claim is gone.
    """
    job.log = (job.log + log + "\n")[-20000:]
    return bool(_running(job).update(log=job.log, heartbeat_at=timezone.now()))


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
    in the same transaction so the domain row leaves its in-between state. A
    retried job's ``queued_at`` is the time it becomes due (after the backoff),
    so the sweep does not resend it before then.
    """
    error = error[-4000:]
    with transaction.atomic():
        if retry and job.attempts < settings.JOB_MAX_ATTEMPTS:
            countdown = min(300, 10 * 2 ** (job.attempts - 1))
            due = timezone.now() + timedelta(seconds=countdown)
            if _running(job).update(status=JobStatus.QUEUED, error=error, queued_at=due):
                job.status = JobStatus.QUEUED
                job_enqueue(job, countdown=countdown)
            return JobStatus.QUEUED
        if _running(job).update(status=JobStatus.FAILED, error=error, finished_at=timezone.now()):
            job.status, job.error = JobStatus.FAILED, error
            _call_failure_handler(job)
        return JobStatus.FAILED


def _call_failure_handler(job: BackgroundJob) -> None:
    if job.failure_handler:
        import_string(job.failure_handler)(job=job)


# --- running a job ------------------------------------------------------------------------


class Heartbeat(threading.Thread):
    """Refreshes a running job's ``heartbeat_at`` every JOB_HEARTBEAT_SECONDS.

    A thread of the worker process with its own database connection, so the
    heartbeat goes on whatever the job computes (numpy and scikit-learn release
    the GIL, and Python switches threads every few milliseconds otherwise), and
    the maths modules never hear of it. Each beat is a conditional UPDATE
    (running, this attempt's number), like every write here: the first one that
    matches no row means the attempt lost its claim, and the thread stops for
    good, so it can never keep alive a job that is no longer its own. A daemon:
    it dies with its process, so a killed worker's job goes stale and the sweep
    requeues it.

    On SQLite a beat waits (busy timeout) while another connection holds the
    write lock, the job's own transaction included; the job never waits for the
    thread, so they cannot deadlock, and a beat that times out is retried at the
    next interval.
    """

    def __init__(self, job: BackgroundJob) -> None:
        super().__init__(name=f"heartbeat-{type(job).__name__}-{job.pk}", daemon=True)
        self.model, self.pk, self.attempts = type(job), job.pk, job.attempts
        self.interval = settings.JOB_HEARTBEAT_SECONDS
        self.lost = threading.Event()
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    alive = _attempt(self.model, self.pk, self.attempts).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # database away or locked: try again at the next beat
                    logger.warning("heartbeat of %s %s failed", self.model.__name__, self.pk)
                    connection.close()
                    continue
                if not alive:
                    if not self._stopped.is_set():
                        self.lost.set()
                        logger.warning(
                            "%s %s attempt %s lost its claim",
                            self.model.__name__,
                            self.pk,
                            self.attempts,
                        )
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stopped.set()
        # A beat in flight finishes quickly (or matches no row); not waiting
        # forever keeps a locked database from holding up the worker.
        self.join(timeout=5)


def job_run(
    model: type[J],
    job_id: int,
    service: Callable[..., object],
    *,
    permanent: tuple[type[Exception], ...] = (),
) -> None:
    """Run one job from its task: the body of every job task, in one line.

    Claims the job (nothing to do when it is finished, running elsewhere or gone:
    a duplicate message), keeps its heartbeat from a ``Heartbeat`` thread while
    ``service(job=job)`` runs, and records what the service did not:

    - ``JobLost``: the sweep took this attempt for dead and requeued the job; the
      service's transaction was rolled back and the owning attempt decides.
    - one of ``permanent``: retrying cannot help (bad input, a refused artifact or
      target); the job fails for good with the error's message.
    - any other exception: a retry with backoff while attempts remain.

    A service records its success itself, with ``job_finish`` in the transaction
    that stores its result; one that returns without doing so is a bug, and its
    job fails at once instead of running again.
    """
    job = job_claim(model, job_id)
    if job is None:
        return
    name = f"{model.__name__} {job_id} (attempt {job.attempts})"
    kind = telemetry.job_kind(model)
    if job.started_at and job.queued_at:
        waited = (job.started_at - job.queued_at).total_seconds()
        telemetry.JOB_QUEUE_WAIT.labels(kind).observe(max(0.0, waited))
    start = time.perf_counter()
    outcome = "succeeded"
    heartbeat = Heartbeat(job)
    heartbeat.start()
    try:
        service(job=job)
    except JobLost:
        outcome = "lost"
        logger.warning("%s lost its claim; its result was dropped", name)
    except permanent as exc:
        logger.warning("%s failed for good: %s", name, exc)
        outcome = _outcome(job_fail(job, error=str(exc), retry=False))
    except Exception as exc:
        logger.exception("%s failed", name)
        outcome = _outcome(job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True))
    else:
        if _running(job).exists():
            logger.error("%s returned without recording an outcome", name)
            job_fail(job, error="The job returned without recording its outcome.", retry=False)
            outcome = "failed"
    finally:
        heartbeat.stop()
        telemetry.JOB_DURATION.labels(kind, outcome).observe(time.perf_counter() - start)
        telemetry.JOBS_FINISHED.labels(kind, outcome).inc()


def _outcome(status: str) -> str:
    return "retried" if status == JobStatus.QUEUED else "failed"


# --- the sweep --------------------------------------------------------------------------


def job_models() -> Iterator[type[BackgroundJob]]:
    for model in apps.get_models():
        if issubclass(model, BackgroundJob):
            yield model


def requeue_stale_jobs() -> dict[str, int]:
    """Find jobs whose worker died or whose message was lost, and act on them.

    Beat runs this every JOB_HEARTBEAT_SECONDS.

    - running with a heartbeat older than JOB_STALE_AFTER_SECONDS: its worker is
      gone (a live one beats every JOB_HEARTBEAT_SECONDS). Requeue it if it has
      attempts left, else fail it.
    - queued and due for longer than JOB_RESEND_AFTER_SECONDS: the process that
      committed it may have died before handing its id to the broker, or the
      broker lost the message. Send the id again; a duplicate is harmless
      because claiming is conditional. (A job waiting behind a long queue gets
      one duplicate per interval; each costs its worker one UPDATE that matches
      nothing.)

    Each row is claimed with a conditional UPDATE, so two sweeps never act
    twice on the same job.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    resend_before = now - timedelta(seconds=settings.JOB_RESEND_AFTER_SECONDS)
    lost = "The worker running this job was lost too many times."
    counts = {"requeued": 0, "failed": 0, "resent": 0}
    for model in job_models():
        rows = model._default_manager
        for job in rows.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale_before):
            with transaction.atomic():
                if job.attempts >= settings.JOB_MAX_ATTEMPTS:
                    if _running(job).update(
                        status=JobStatus.FAILED, error=lost, finished_at=timezone.now()
                    ):
                        job.status, job.error = JobStatus.FAILED, lost
                        _call_failure_handler(job)
                        counts["failed"] += 1
                elif _running(job).update(status=JobStatus.QUEUED, queued_at=timezone.now()):
                    job_enqueue(job)
                    counts["requeued"] += 1
        for job in rows.filter(status=JobStatus.QUEUED, queued_at__lt=resend_before):
            if rows.filter(pk=job.pk, status=JobStatus.QUEUED, queued_at=job.queued_at).update(
                queued_at=timezone.now()
            ):
                _send(job)
                counts["resent"] += 1
    for action, n in counts.items():
        if n:
            telemetry.SWEEP_ACTIONS.labels(action).inc(n)
    if any(counts.values()):
        logger.warning("stale job sweep: %s", counts)
    return counts
