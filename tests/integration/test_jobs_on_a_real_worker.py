"""Background jobs on real processes: a long job keeps its claim by its heartbeat, a
killed worker's job is requeued within the stale threshold and finished once, a job
that keeps dying fails after the attempt cap, and a job whose web process died
between its commit and the hand-off to the broker is resent.

Thresholds are shortened (the worker beats every 0.25 s; a job is stale after 2.5 s:
ten beats, as a loaded machine may stall a process for most of a second),
and the registration validation is slowed or made to die by the test-only worker
app ``tests.integration.faulty_worker``. Except in the last test, the sweep runs
here (it is what beat runs), so the test sees each of its outcomes.
"""

from __future__ import annotations

import http.client
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from common.jobs import requeue_stale_jobs
from common.models import AuditEvent
from registry.models import ModelVersion, RegistrationJob
from tests.conftest import (
    SIGNATURE,
    classifier_bytes,
    register,
    start_worker,
    stop_worker,
    wait_for,
)
from tests.processes import start_web, stop

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

HEARTBEAT, STALE = 0.25, 2.5


@pytest.fixture
def job_env(worker_env: dict[str, str], settings: Any) -> dict[str, str]:
    """The worker's environment; the sweep here uses the same stale threshold."""
    settings.JOB_STALE_AFTER_SECONDS = STALE
    return {
        **worker_env,
        "JOB_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "JOB_STALE_AFTER_SECONDS": str(STALE),
    }


def faulty_worker(env: dict[str, str], log: Path, **faults: str) -> Any:
    return start_worker({**env, **faults}, log, app="tests.integration.faulty_worker")


def job_of(version: ModelVersion) -> RegistrationJob:
    return RegistrationJob.objects.get(version=version)


def running(version: ModelVersion) -> RegistrationJob | None:
    return RegistrationJob.objects.filter(version=version, status="running").first()


def test_a_job_that_runs_longer_than_the_stale_threshold_keeps_its_claim_and_finishes_once(
    job_env, tmp_path, model, personas
):
    worker = faulty_worker(job_env, tmp_path / "worker.log", SLOW_VALIDATION_SECONDS="8")
    try:
        version = register(model, personas.bot)
        wait_for(lambda: running(version), timeout=60, interval=0.05, message="the job to start")
        sweeps = 0
        while job_of(version).status == "running":  # beat's sweep, as often as jobs beat
            assert requeue_stale_jobs() == {"requeued": 0, "failed": 0, "resent": 0}
            sweeps += 1
            time.sleep(HEARTBEAT)
    finally:
        stop_worker(worker)
    job = job_of(version)
    version.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 1
    assert job.duration_seconds > 3 * STALE and sweeps > 10
    assert version.status == "ready"
    assert AuditEvent.objects.filter(action="registry.version.ready").count() == 1


def test_a_job_whose_worker_is_killed_is_requeued_within_the_threshold_and_finished_once(
    job_env, tmp_path, model, personas
):
    first = faulty_worker(job_env, tmp_path / "first.log", SLOW_VALIDATION_SECONDS="60")
    try:
        version = register(model, personas.bot)
        wait_for(lambda: running(version), timeout=60, interval=0.05, message="the job to start")
        time.sleep(5 * HEARTBEAT)  # alive and beating: never taken for dead
        assert requeue_stale_jobs()["requeued"] == 0
        stop_worker(first, signal.SIGKILL)  # the whole worker, mid-job: no ack, no cleanup
        killed_at = time.monotonic()
    finally:
        stop_worker(first)
    wait_for(lambda: requeue_stale_jobs()["requeued"] == 1, timeout=10, interval=0.05)
    # The last beat was at most one interval old when the worker died.
    assert time.monotonic() - killed_at < STALE + 1.5
    assert job_of(version).status == "queued"

    second = faulty_worker(job_env, tmp_path / "second.log")
    try:
        wait_for(lambda: job_of(version).status == "succeeded", timeout=60, message="the retry")
    finally:
        stop_worker(second)
    job = job_of(version)
    version.refresh_from_db()
    assert job.attempts == 2 and version.status == "ready"
    assert AuditEvent.objects.filter(action="registry.version.ready").count() == 1
    assert "registry.tasks.validate_version" in second.output()


def test_a_job_that_keeps_dying_fails_with_the_reason_after_the_attempt_cap(
    job_env, tmp_path, model, personas, settings
):
    settings.JOB_MAX_ATTEMPTS = 2
    worker = faulty_worker(
        {**job_env, "JOB_MAX_ATTEMPTS": "2"}, tmp_path / "worker.log", DIE_IN_VALIDATION="1"
    )
    try:
        version = register(model, personas.bot)
        outcomes: list[dict[str, int]] = []

        def swept_to_failure() -> bool:
            outcomes.append(requeue_stale_jobs())
            return job_of(version).status == "failed"

        wait_for(swept_to_failure, timeout=60, interval=0.1, message="the job to fail")
    finally:
        stop_worker(worker)
    job = job_of(version)
    version.refresh_from_db()
    assert job.attempts == 2
    assert sum(o["requeued"] for o in outcomes) == 1 and sum(o["failed"] for o in outcomes) == 1
    assert job.error == "The worker running this job was lost too many times."
    assert version.status == "failed"
    assert version.status_reason == (
        "Validation could not run: The worker running this job was lost too many times."
    )
    assert worker.output().count("SIGKILL") >= 2  # each attempt's pool process died


# --- a web process killed between the commit and the hand-off ----------------------------


def post_registration(port: int, token: str) -> None:
    boundary = uuid.uuid4().hex
    metadata = json.dumps({"signature": {"inputs": SIGNATURE}})
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n'.encode(),
            metadata.encode() + b"\r\n",
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="artifact"; filename="model.skops"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode(),
            classifier_bytes() + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1/models/credit/versions/",
            body=body,
            headers={
                "Authorization": f"Token {token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        response = connection.getresponse()
        pytest.fail(f"the web process answered {response.status}: {response.read()[:500]!r}")
    except (http.client.RemoteDisconnected, ConnectionError):
        pass  # it died after its commit, as it was told to
    finally:
        connection.close()


def test_a_job_queued_by_a_web_process_killed_after_its_commit_is_resent_and_run(
    worker_env, tmp_path, model, personas
):
    from common.auth import token_issue

    token, _expiry = token_issue(user=personas.bot)
    # A running system: a real worker with beat embedded, whose sweep runs every
    # second here (as often as jobs beat) and resends a job queued for over 2 s.
    worker = start_worker(
        {**worker_env, "JOB_RESEND_AFTER_SECONDS": "2"},
        tmp_path / "worker.log",
        "--beat",
        "--scheduler",
        "celery.beat:PersistentScheduler",
        "--schedule-filename",
        str(tmp_path / "beat-schedule"),
    )
    try:
        web = start_web(
            worker_env,
            tmp_path / "web.log",
            app="tests.integration.web_killed_after_commit:application",
        )
        try:
            post_registration(web.port, token)
            killed_at = time.monotonic()
            version = ModelVersion.objects.get(registered_model=model, number=1)
            wait_for(
                lambda: ModelVersion.objects.get(pk=version.pk).status == "ready",
                timeout=30,
                message="the job to be resent and validated",
            )
            recovered_in = time.monotonic() - killed_at
        finally:
            stop(web, signal.SIGTERM, timeout=30)
    finally:
        stop_worker(worker)
    assert "was sent SIGKILL" in (tmp_path / "web.log").read_text()
    assert recovered_in < 30
    job = job_of(version)
    assert job.status == "succeeded" and job.attempts == 1
    # No message left the dead web process: the job ran on the sweep's resend (it
    # is the only job in the database; ids are never reused).
    assert "'resent': 1" in worker.output()
