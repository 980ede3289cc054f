"""Thin tasks: take an id, claim the job row, call one service, own retries."""

from __future__ import annotations

import logging

from celery import shared_task

from common.jobs import JobLost, job_claim, job_fail
from lifecycle import retraining, services
from lifecycle.evaluation import EvaluationInputError
from lifecycle.models import Evaluation, RetrainingRun
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


# --- retraining --------------------------------------------------------------------
# Written as heavy_evaluate is, to become one ``job_run(...)`` line at the merge.


@shared_task(name="lifecycle.tasks.heavy_retrain")
def heavy_retrain(job_id: int) -> None:
    job = job_claim(RetrainingRun, job_id)
    if job is None:
        return
    try:
        retraining.retraining_run_execute(job=job)
    except JobLost:
        logger.warning("retraining run %s was taken over by another attempt", job_id)
    except retraining.RUN_INPUT_ERRORS as exc:  # no retry can fix the data or the parent
        job_fail(job, error=str(getattr(exc, "reason", exc)), retry=False)
    except Exception as exc:
        logger.exception("retraining run %s failed", job_id)
        job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True)


@shared_task(name="lifecycle.tasks.retrain_on_schedule")
def retrain_on_schedule(model_id: int) -> None:
    """Run by beat from the policy's PeriodicTask (django-celery-beat)."""
    retraining.retraining_on_schedule(model_id=model_id)


@shared_task(name="lifecycle.tasks.retraining_signal_sweep")
def retraining_signal_sweep() -> dict[str, int]:
    return retraining.retraining_signals_consume()


@shared_task(name="lifecycle.tasks.retraining_follow_up_sweep")
def retraining_follow_up_sweep() -> int:
    return retraining.retraining_follow_up_sweep()
