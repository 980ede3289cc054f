"""Thin tasks: each names its job model and its service; ``common.jobs.job_run`` does
the rest (claim, heartbeat, retries, failure handler)."""

from __future__ import annotations

from celery import shared_task

from common.jobs import job_run
from lifecycle import services
from lifecycle.evaluation import EvaluationInputError
from lifecycle.models import Evaluation
from registry.artifacts import ArtifactRejected


@shared_task(name="lifecycle.tasks.heavy_evaluate")
def heavy_evaluate(job_id: int) -> None:
    job_run(
        Evaluation,
        job_id,
        services.evaluation_run,
        permanent=(EvaluationInputError, ArtifactRejected),
    )
