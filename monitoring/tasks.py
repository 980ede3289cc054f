"""Thin tasks: each job task names its job model and its service, and
``common.jobs.job_run`` does the rest (claim, heartbeat, retries, failure handler).

These tasks run without a job row, because losing one of their messages
loses nothing that is not redone:

- ``retention_sweep`` is beat's, daily: what one run leaves is deleted by the next.
- ``claim_due_monitors`` is beat's, every minute: a monitor stays due until a
  sweep claims it, and the claim and the check's job row commit together, so a
  lost or killed sweep is simply repeated by the next one.
- ``email_alert`` is a courtesy mail about an alert that is already durable: open
  on the dashboard, in the trail, and sent to the webhooks as an event (with
  retries of their own). A worker killed while sending has the message
  redelivered (late acks); the mail is lost only if the process that committed
  the alert dies before handing the message over, and nothing else depends on it.
"""

from __future__ import annotations

from celery import shared_task

from common.jobs import job_run
from monitoring import checks, retention, services
from monitoring.models import CheckRun, ProfileBuild
from registry.artifacts import ArtifactRejected


@shared_task(name="monitoring.tasks.heavy_run_check")
def heavy_run_check(job_id: int) -> None:
    job_run(CheckRun, job_id, checks.check_run_execute)


@shared_task(name="monitoring.tasks.heavy_build_profile")
def heavy_build_profile(job_id: int) -> None:
    job_run(ProfileBuild, job_id, services.reference_profile_build, permanent=(ArtifactRejected,))


@shared_task(name="monitoring.tasks.claim_due_monitors")
def claim_due_monitors() -> int:
    return services.monitors_claim_due()


@shared_task(name="monitoring.tasks.retention_sweep")
def retention_sweep() -> dict[str, int]:
    """Delete expired prediction and label batches that nothing holds (monitoring.retention)."""
    return retention.retention_sweep()


@shared_task(name="monitoring.tasks.email_alert", autoretry_for=(OSError,), max_retries=3)
def email_alert(alert_id: int) -> int:
    """Mail the model's owner and team about an alert that was just opened."""
    return services.alert_email(alert_id=alert_id)
