"""Thin tasks: take an id, claim the job row, call one service, own retries."""

from __future__ import annotations

import logging

from celery import shared_task

from common.jobs import JobLost, job_claim, job_fail
from registry import services
from registry.models import RegistrationJob

logger = logging.getLogger(__name__)


@shared_task(name="registry.tasks.validate_version")
def validate_version(job_id: int) -> None:
    job = job_claim(RegistrationJob, job_id)
    if job is None:
        return  # finished, running elsewhere, or gone: nothing to do
    try:
        services.model_version_validate(job=job)
    except JobLost:
        logger.warning("validation job %s was taken over by another attempt", job_id)
    except Exception as exc:
        logger.exception("validation of job %s failed", job_id)
        job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True)
