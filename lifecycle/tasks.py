"""Thin tasks: each names its job model and its service; ``common.jobs.job_run`` does
the rest (claim, heartbeat, retries, failure handler)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from common.jobs import job_run
from lifecycle import deployments, retraining, rollouts, services, serving_logs
from lifecycle.attribution import ExplanationInputError
from lifecycle.evaluation import EvaluationInputError
from lifecycle.models import Deployment, Evaluation, Explanation, RetrainingRun
from registry.artifacts import ArtifactRejected


@shared_task(name="lifecycle.tasks.heavy_evaluate")
def heavy_evaluate(job_id: int) -> None:
    job_run(
        Evaluation,
        job_id,
        services.evaluation_run,
        permanent=(EvaluationInputError, ArtifactRejected),
    )


@shared_task(name="lifecycle.tasks.heavy_explain")
def heavy_explain(job_id: int) -> None:
    job_run(
        Explanation,
        job_id,
        services.explanation_run,
        permanent=(ExplanationInputError, ArtifactRejected),
    )


@shared_task(name="lifecycle.tasks.deployment_run")
def deployment_run(job_id: int) -> None:
    job_run(Deployment, job_id, deployments.deployment_run)


@shared_task(name="lifecycle.tasks.rollout_sweep")
def rollout_sweep() -> int:
    """Beat: analyse and move on every canary step or shadow that is due."""
    return rollouts.rollout_sweep()


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


# --- retraining --------------------------------------------------------------------


@shared_task(name="lifecycle.tasks.heavy_retrain")
def heavy_retrain(job_id: int) -> None:
    # RUN_INPUT_ERRORS: no retry can fix the data or the parent.
    job_run(
        RetrainingRun,
        job_id,
        retraining.retraining_run_execute,
        permanent=retraining.RUN_INPUT_ERRORS,
    )


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
