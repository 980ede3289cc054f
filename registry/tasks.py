"""Thin tasks: each names its job model and its service; ``common.jobs.job_run`` does
the rest (claim, heartbeat, retries, failure handler)."""

from __future__ import annotations

from celery import shared_task

from common.jobs import job_run
from registry import services
from registry.models import RegistrationJob


@shared_task(name="registry.tasks.validate_version")
def validate_version(job_id: int) -> None:
    # A rejected artifact is an outcome (the version fails), not an error: the
    # service records it, so nothing here is permanent.
    job_run(RegistrationJob, job_id, services.model_version_validate)
