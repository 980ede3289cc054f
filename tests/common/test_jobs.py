"""Job rows: one writer, conditional transitions, retries, the stale-job sweep, the
runner (``job_run``) and its heartbeat thread."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from common.jobs import (
    Heartbeat,
    job_claim,
    job_fail,
    job_finish,
    job_run,
    requeue_stale_jobs,
)
from registry.models import RegistrationJob
from tests.conftest import register, wait_for

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


def test_the_sweep_resends_a_queued_job_only_once_its_message_may_be_lost(
    job, monkeypatch, settings
):
    from common import jobs

    settings.JOB_RESEND_AFTER_SECONDS = 30
    sent = []
    monkeypatch.setattr(jobs, "_send", lambda j, countdown=None: sent.append(j.pk))
    RegistrationJob.objects.filter(pk=job.pk).update(
        queued_at=timezone.now() - timedelta(seconds=20)
    )
    assert requeue_stale_jobs()["resent"] == 0  # its message is most likely on its way
    RegistrationJob.objects.filter(pk=job.pk).update(
        queued_at=timezone.now() - timedelta(seconds=31)
    )
    assert requeue_stale_jobs()["resent"] == 1
    assert sent == [job.pk]


def test_a_running_job_with_a_fresh_heartbeat_is_left_alone_however_long_it_runs(job, settings):
    settings.JOB_STALE_AFTER_SECONDS = 60
    job_claim(RegistrationJob, job.pk)
    RegistrationJob.objects.filter(pk=job.pk).update(
        started_at=timezone.now() - timedelta(hours=2),
        heartbeat_at=timezone.now() - timedelta(seconds=20),
    )
    assert requeue_stale_jobs() == {"requeued": 0, "failed": 0, "resent": 0}
    assert RegistrationJob.objects.get(pk=job.pk).status == "running"


# --- job_run: the one runner of every job task ------------------------------------------


def finish(job, log="done"):
    with transaction.atomic():
        job_finish(job, log=log)


def test_job_run_runs_the_service_once_and_ignores_a_duplicate_message(job):
    calls = []

    def service(*, job):
        calls.append(job.attempts)
        finish(job)

    job_run(RegistrationJob, job.pk, service)
    job_run(RegistrationJob, job.pk, service)  # the same id delivered again
    job.refresh_from_db()
    assert calls == [1]
    assert job.status == "succeeded" and job.log == "done\n"


def test_a_permanent_error_fails_the_job_at_once_with_its_message(job):
    from registry.artifacts import ArtifactRejected

    def service(*, job):
        raise ArtifactRejected("not a skops file")

    job_run(RegistrationJob, job.pk, service, permanent=(ArtifactRejected,))
    job.refresh_from_db()
    job.version.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1
    assert job.error == "not a skops file"
    assert job.version.status_reason == "Validation could not run: not a skops file"


def test_another_error_is_retried_after_a_backoff_that_the_sweep_waits_for(
    job, monkeypatch, settings, django_capture_on_commit_callbacks
):
    from common import jobs

    sent = []
    monkeypatch.setattr(jobs, "_send", lambda j, countdown=None: sent.append(countdown))

    def service(*, job):
        raise OSError("storage down")

    with django_capture_on_commit_callbacks(execute=True):
        job_run(RegistrationJob, job.pk, service)
    job.refresh_from_db()
    assert job.status == "queued" and job.error == "OSError: storage down"
    assert sent == [10]  # sent again, due in 10 s
    settings.JOB_RESEND_AFTER_SECONDS = 0
    assert requeue_stale_jobs()["resent"] == 0  # not resent before it is due
    assert sent == [10]


def test_the_result_of_an_attempt_that_lost_its_claim_is_dropped(job):
    def service(*, job):
        # Meanwhile the sweep took this attempt for dead and requeued the job.
        RegistrationJob.objects.filter(pk=job.pk).update(status="queued")
        finish(job, log="late result")

    job_run(RegistrationJob, job.pk, service)
    job.refresh_from_db()
    assert job.status == "queued" and job.log == "" and job.error == ""


def test_a_service_that_returns_without_recording_an_outcome_fails_its_job(job):
    job_run(RegistrationJob, job.pk, lambda *, job: None)
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 1
    assert job.error == "The job returned without recording its outcome."


# --- the heartbeat thread (its own connection: committed rows, both databases) ----------


@pytest.fixture
def committed_job(model, personas, monkeypatch, settings):
    """A committed queued job whose id is not sent anywhere; jobs beat every 50 ms."""
    from common import jobs

    monkeypatch.setattr(jobs, "_send", lambda j, countdown=None: None)
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    return register(model, personas.bot).registration_job


def heartbeat_of(job):
    return RegistrationJob.objects.values_list("heartbeat_at", flat=True).get(pk=job.pk)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_goes_on_while_the_service_computes_with_the_gil(committed_job):
    seen = {}

    def service(*, job):
        seen["claimed"] = heartbeat_of(job)
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:  # pure Python: never releases the GIL itself
            sum(range(1000))
        seen["last"] = heartbeat_of(job)
        finish(job)

    job_run(RegistrationJob, committed_job.pk, service)
    assert seen["last"] - seen["claimed"] >= timedelta(seconds=0.3)
    assert RegistrationJob.objects.get(pk=committed_job.pk).status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_stops_for_good_once_its_attempt_lost_the_claim(committed_job):
    first = job_claim(RegistrationJob, committed_job.pk)
    beat = Heartbeat(first)
    beat.start()
    try:
        wait_for(lambda: heartbeat_of(first) > first.heartbeat_at, timeout=5)
        # The sweep requeues the job and a new attempt claims it at once.
        RegistrationJob.objects.filter(pk=first.pk).update(status="queued")
        second = job_claim(RegistrationJob, first.pk)
        beat.join(timeout=5)
        assert beat.lost.is_set() and not beat.is_alive()
        time.sleep(0.2)
        assert heartbeat_of(second) == second.heartbeat_at  # never beat for attempt 2
    finally:
        beat.stop()


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_waits_out_the_jobs_own_transaction_without_a_deadlock(committed_job):
    def service(*, job):
        with transaction.atomic():
            # Holds the row lock (PostgreSQL) or the write lock (SQLite) for ten beats.
            RegistrationJob.objects.filter(pk=job.pk).update(log="writing\n")
            time.sleep(0.5)
            job.log = "writing\n"
            job_finish(job, log="done")

    started = time.monotonic()
    job_run(RegistrationJob, committed_job.pk, service)
    assert time.monotonic() - started < 5
    job = RegistrationJob.objects.get(pk=committed_job.pk)
    assert job.status == "succeeded" and job.log == "writing\ndone\n"


@pytest.mark.django_db(transaction=True)
def test_a_broker_down_after_the_commit_leaves_the_job_queued_for_the_sweep(
    model, personas, monkeypatch
):
    from common import jobs

    def broker_down(job, countdown=None):
        raise OSError("broker down")

    monkeypatch.setattr(jobs, "_send", broker_down)
    version = register(model, personas.bot)  # the request does not fail after its commit
    assert version.status == "pending"
    assert RegistrationJob.objects.get(version=version).status == "queued"
