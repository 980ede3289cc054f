"""Thin tasks: take an id, claim the job row, call one service, own retries."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from common.jobs import JobLost, job_claim, job_fail
from governance import fairness_audits
from governance.models import FairnessAudit, MitigationRun
from registry.artifacts import ArtifactRejected

logger = logging.getLogger(__name__)


def _run(model: Any, job_id: int, service: Any, what: str) -> None:
    job = job_claim(model, job_id)
    if job is None:
        return
    try:
        service(job=job)
    except JobLost:
        logger.warning("%s %s was taken over by another attempt", what, job_id)
    except (fairness_audits.AuditInputError, ArtifactRejected) as exc:
        job_fail(job, error=str(getattr(exc, "reason", exc)), retry=False)
    except Exception as exc:
        logger.exception("%s %s failed", what, job_id)
        job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True)


@shared_task(name="governance.tasks.heavy_fairness_audit")
def heavy_fairness_audit(job_id: int) -> None:
    _run(FairnessAudit, job_id, fairness_audits.fairness_audit_run, "fairness audit")


@shared_task(name="governance.tasks.heavy_mitigate")
def heavy_mitigate(job_id: int) -> None:
    _run(MitigationRun, job_id, fairness_audits.mitigation_run, "mitigation")


@shared_task(name="governance.tasks.mitigation_follow_up_sweep")
def mitigation_follow_up_sweep() -> int:
    return fairness_audits.mitigation_follow_up_sweep()


@shared_task(name="governance.tasks.approval_expiry_sweep")
def approval_expiry_sweep() -> int:
    from governance import reviews

    return reviews.approval_expiry_sweep()


@shared_task(name="governance.tasks.deliver_webhook")
def deliver_webhook(job_id: int) -> None:
    from common.errors import DomainError
    from governance import webhooks
    from governance.models import WebhookDelivery

    job = job_claim(WebhookDelivery, job_id)
    if job is None:
        return
    try:
        webhooks.delivery_send(job=job)
    except JobLost:
        logger.warning("webhook delivery %s was taken over", job_id)
    except DomainError as exc:  # the target is now refused: retrying cannot help
        job_fail(job, error=exc.message, retry=False)
    except Exception as exc:
        job_fail(job, error=f"{type(exc).__name__}: {exc}", retry=True)
