"""Thin tasks: take an id, claim the row, call one service, own retries."""

from __future__ import annotations

import logging

from celery import shared_task

from common.jobs import JobLost, job_claim, job_fail
from monitoring import checks, retention, services
from monitoring.models import CheckRun

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.tasks.heavy_run_check")
def heavy_run_check(job_id: int) -> None:
    job = job_claim(CheckRun, job_id)
    if job is None:
        return
    try:
        checks.check_run_execute(job=job)
    except JobLost:
        logger.warning("check run %s was taken over by another attempt", job_id)
    except Exception as exc:
        logger.exception("check run %s failed", job_id)
        job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True)


@shared_task(name="monitoring.tasks.claim_due_monitors")
def claim_due_monitors() -> int:
    return services.monitors_claim_due()


@shared_task(name="monitoring.tasks.retention_sweep")
def retention_sweep() -> dict[str, int]:
    """Delete expired prediction and label batches that nothing holds (monitoring.retention)."""
    return retention.retention_sweep()


@shared_task(name="monitoring.tasks.email_alert", autoretry_for=(OSError,), max_retries=3)
def email_alert(alert_id: int) -> int:
    """Mail the model's owner and team about an alert that was just opened."""
    return services.alert_email(alert_id=alert_id)


@shared_task(
    name="monitoring.tasks.heavy_build_reference_profile",
    autoretry_for=(OSError,),
    max_retries=3,
)
def heavy_build_reference_profile(version_id: int) -> bool:
    """Build a version's drift baseline (idempotent: an existing one is kept)."""
    return services.reference_profile_build_for(version_id=version_id)
