"""Thin tasks: take an id, claim the job row, call one service, own retries."""

from __future__ import annotations

import logging

from celery import shared_task

from common.jobs import JobLost, job_claim, job_fail
from lifecycle import services
from lifecycle.evaluation import EvaluationInputError
from lifecycle.models import Evaluation
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
