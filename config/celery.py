"""The Celery application and the one place that declares every beat schedule.

Reliability settings: JSON only (the broker carries ids, never objects), late
acknowledgement plus reject-on-worker-lost (a task whose worker dies is
redelivered), prefetch of one (a long job never hides queued ones behind it),
hard and soft time limits. Quick work (deployments, notifications, sweeps) and
heavy work (artifact validation, evaluations, drift, retraining) have separate
queues so a slow job never delays a quick one; run `celery worker -Q quick` and
`-Q heavy` apart to scale them independently (docs/deployment.md).

Metrics: with WORKER_METRICS_PORT and PROMETHEUS_MULTIPROC_DIR set, the worker's
main process serves the job metrics its pool processes record (common/telemetry.py)
at http://WORKER_METRICS_HOST:WORKER_METRICS_PORT/metrics (127.0.0.1 by default).
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_init, worker_process_shutdown
from django.conf import settings
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("modelgate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    broker_connection_retry_on_startup=True,
    task_queues=(
        Queue("quick", Exchange("quick"), routing_key="quick"),
        Queue("heavy", Exchange("heavy"), routing_key="heavy"),
    ),
    task_default_queue="quick",
    task_routes={
        "registry.tasks.validate_version": {"queue": "heavy"},
        "*.heavy_*": {"queue": "heavy"},
    },
    timezone="UTC",
)


def _every_minute_or(seconds: int, default: Any = None) -> Any:
    """A crontab by default; every ``seconds`` when a setting shortens it (``make loop``
    sets MONITOR_CLAIM_SECONDS and RETRAINING_SWEEP_SECONDS: minutes become seconds)."""
    if seconds:
        return timedelta(seconds=max(1, int(seconds)))
    return default if default is not None else crontab(minute="*")


# Every periodic job of the project, in one place.
app.conf.beat_schedule = {
    # As often as running jobs beat (JOB_HEARTBEAT_SECONDS, 15 s by default): a
    # dead worker's job is requeued JOB_STALE_AFTER_SECONDS (+ at most one
    # interval) after its last beat, a lost message resent JOB_RESEND_AFTER_SECONDS
    # (+ one interval) after its job became due. Whole seconds: the database
    # scheduler stores intervals as integers.
    "requeue-stale-jobs": {
        "task": "common.tasks.requeue_stale_jobs",
        "schedule": timedelta(seconds=max(1, round(settings.JOB_HEARTBEAT_SECONDS))),
    },
    "governance-approval-expiry": {
        "task": "governance.tasks.approval_expiry_sweep",
        "schedule": crontab(minute=23),
    },
    "monitoring-claim-due-monitors": {
        "task": "monitoring.tasks.claim_due_monitors",
        "schedule": _every_minute_or(settings.MONITOR_CLAIM_SECONDS),
    },
    # Retraining: alert signals to runs (and debounce re-checks), candidates' follow-ups.
    # Each policy's own schedule is a per-model PeriodicTask row (django-celery-beat's
    # DatabaseScheduler), written by lifecycle.retraining.retraining_policy_set.
    "lifecycle-retraining-signals": {
        "task": "lifecycle.tasks.retraining_signal_sweep",
        "schedule": _every_minute_or(settings.RETRAINING_SWEEP_SECONDS),
    },
    "lifecycle-retraining-follow-ups": {
        "task": "lifecycle.tasks.retraining_follow_up_sweep",
        "schedule": _every_minute_or(settings.RETRAINING_SWEEP_SECONDS, crontab(minute="*/5")),
    },
    # Rollouts: canary steps and shadows that are due are analysed and moved on.
    "lifecycle-rollout-sweep": {
        "task": "lifecycle.tasks.rollout_sweep",
        "schedule": timedelta(seconds=max(1, round(settings.ROLLOUT_SWEEP_SECONDS))),
    },
    "purge-expired-tokens": {
        "task": "common.tasks.purge_expired_tokens",
        "schedule": crontab(minute=17, hour=3),
    },
    "monitoring-retention-sweep": {
        "task": "monitoring.tasks.retention_sweep",
        "schedule": crontab(minute=41, hour=2),
    },
    "sweep-upload-tmp": {
        "task": "common.tasks.sweep_upload_tmp",
        "schedule": crontab(minute="*/15"),
    },
    "purge-idempotency-keys": {
        "task": "common.tasks.purge_idempotency_keys",
        "schedule": crontab(minute=41),
    },
}

app.autodiscover_tasks()


@worker_init.connect
def _serve_worker_metrics(**kwargs: object) -> None:
    """Expose the pool processes' job metrics from the worker's main process.

    PROMETHEUS_MULTIPROC_DIR must be in the environment before the worker starts
    (prometheus-client reads it when first imported); it is cleaned here, before
    the pool forks, and must be this worker's own.
    """
    port = os.environ.get("WORKER_METRICS_PORT")
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not port:
        return
    if not folder:
        raise RuntimeError("WORKER_METRICS_PORT needs PROMETHEUS_MULTIPROC_DIR (one per worker)")
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    shutil.rmtree(folder, ignore_errors=True)
    Path(folder).mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    start_http_server(
        int(port), addr=os.environ.get("WORKER_METRICS_HOST", "127.0.0.1"), registry=registry
    )


@worker_process_shutdown.connect
def _pool_process_gone(pid: int | None = None, **kwargs: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
