"""Thin tasks: take an id, claim the job row, call one service, own retries."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from common.jobs import JobLost, job_claim, job_fail
from lifecycle import deployments, services, serving_logs
from lifecycle.evaluation import EvaluationInputError
from lifecycle.models import Deployment, Evaluation
from registry.artifacts import ArtifactRejected

logger = logging.getLogger(__name__)


@shared_task(name="lifecycle.tasks.heavy_evaluate")
def heavy_evaluate(job_id: int) -> None:
    job = job_claim(Evaluation, job_id)
    if job is None:
        return
    try:
        services.evaluation_run(job=job)
    except JobLost:
        logger.warning("evaluation %s was taken over by another attempt", job_id)
    except (EvaluationInputError, ArtifactRejected) as exc:
        job_fail(job, error=str(getattr(exc, "reason", exc)), retry=False)
    except Exception as exc:
        logger.exception("evaluation %s failed", job_id)
        job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True)


@shared_task(name="lifecycle.tasks.deployment_run")
def deployment_run(job_id: int) -> None:
    job = job_claim(Deployment, job_id)
    if job is None:
        return
    try:
        deployments.deployment_run(job=job)
    except JobLost:
        logger.warning("deployment %s was taken over by another attempt", job_id)
    except Exception as exc:
        logger.exception("deployment %s failed", job_id)
        job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True)


@shared_task(
    name="lifecycle.tasks.serving_log_ingest",
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=20,
)
def serving_log_ingest(message: dict[str, Any]) -> None:
    """A serving process's batch of logged predictions (the broker carries the rows
    themselves, a few hundred KB at most; the batch id makes a redelivery harmless)."""
    serving_logs.serving_log_ingest(message=message)
