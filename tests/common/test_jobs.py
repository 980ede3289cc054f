"""Job rows: one writer, conditional transitions, retries, the stale-job sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from common.jobs import job_claim, job_fail, job_finish, requeue_stale_jobs
from registry.models import RegistrationJob
from tests.conftest import register

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(model, personas):
    return register(model, personas.bot).registration_job


def test_a_job_is_claimed_once(job):
    assert job_claim(RegistrationJob, job.pk).attempts == 1
    assert job_claim(RegistrationJob, job.pk) is None


def test_an_error_requeues_with_attempts_left_then_fails_and_calls_the_handler(
    job, settings, django_capture_on_commit_callbacks
):
    settings.JOB_MAX_ATTEMPTS = 2
    with django_capture_on_commit_callbacks() as callbacks:
        claimed = job_claim(RegistrationJob, job.pk)
        assert job_fail(claimed, error="storage down", retry=True) == "queued"
    assert len(callbacks) == 1  # the id is sent again after commit
    claimed = job_claim(RegistrationJob, job.pk)
    assert claimed.attempts == 2
    assert job_fail(claimed, error="storage still down", retry=True) == "failed"
    job.refresh_from_db()
    job.version.refresh_from_db()
    assert job.status == "failed" and job.error == "storage still down"
    assert job.version.status == "failed"
    assert job.version.status_reason == "Validation could not run: storage still down"


def test_the_sweep_requeues_a_job_whose_worker_died(job, django_capture_on_commit_callbacks):
    claimed = job_claim(RegistrationJob, job.pk)
    RegistrationJob.objects.filter(pk=claimed.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        counts = requeue_stale_jobs()
    assert counts["requeued"] == 1 and len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == "queued"
    # the dead attempt can no longer record a result
    from common.jobs import JobLost

    with pytest.raises(JobLost), transaction.atomic():
        job_finish(claimed)


def test_the_sweep_gives_up_on_a_job_that_keeps_dying(job, settings):
    settings.JOB_MAX_ATTEMPTS = 1
    job_claim(RegistrationJob, job.pk)
    RegistrationJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert requeue_stale_jobs()["failed"] == 1
    job.refresh_from_db()
    job.version.refresh_from_db()
    assert job.status == "failed"
    assert job.version.status == "failed"


def test_the_sweep_resends_a_job_whose_message_was_lost(job, monkeypatch):
    from common import jobs

    RegistrationJob.objects.filter(pk=job.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    sent = []
    monkeypatch.setattr(jobs, "_send", lambda j, countdown=None: sent.append(j.pk))
    assert requeue_stale_jobs()["resent"] == 1
    assert sent == [job.pk]
    assert requeue_stale_jobs()["resent"] == 0  # queued_at was refreshed
