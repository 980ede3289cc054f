"""Thin tasks: each names its job model and its service; ``common.jobs.job_run`` does
the rest (claim, heartbeat, retries, failure handler)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from common.jobs import job_run
from lifecycle import deployments, services, serving_logs
from lifecycle.evaluation import EvaluationInputError
from lifecycle.models import Deployment, Evaluation
from registry.artifacts import ArtifactRejected


@shared_task(name="lifecycle.tasks.heavy_evaluate")
def heavy_evaluate(job_id: int) -> None:
    job_run(
        Evaluation,
        job_id,
        services.evaluation_run,
        permanent=(EvaluationInputError, ArtifactRejected),
    )


@shared_task(name="lifecycle.tasks.deployment_run")
def deployment_run(job_id: int) -> None:
    job_run(Deployment, job_id, deployments.deployment_run)


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
