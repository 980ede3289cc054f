"""Thin tasks: each names its job model and its service; ``common.jobs.job_run`` does
the rest (claim, heartbeat, retries, failure handler). The sweeps are beat's."""

from __future__ import annotations

from celery import shared_task

from common.errors import DomainError
from common.jobs import job_run
from governance import fairness_audits
from governance.models import FairnessAudit
from registry.artifacts import ArtifactRejected

#: Bad data or a refused artifact: the audit fails for good.
BAD_INPUT = (fairness_audits.AuditInputError, ArtifactRejected)


@shared_task(name="governance.tasks.heavy_fairness_audit")
def heavy_fairness_audit(job_id: int) -> None:
    job_run(FairnessAudit, job_id, fairness_audits.fairness_audit_run, permanent=BAD_INPUT)


@shared_task(name="governance.tasks.approval_expiry_sweep")
def approval_expiry_sweep() -> int:
    from governance import reviews

    return reviews.approval_expiry_sweep()


@shared_task(name="governance.tasks.deliver_webhook")
def deliver_webhook(job_id: int) -> None:
    from governance import webhooks
    from governance.models import WebhookDelivery

    # DomainError: the target is now refused (it resolves to a private address):
    # retrying cannot help. A network error or a non-2xx answer is retried.
    job_run(WebhookDelivery, job_id, webhooks.delivery_send, permanent=(DomainError,))
