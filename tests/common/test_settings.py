"""Production mode refuses insecure settings; the deploy checklist passes."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_django(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    dropped = ("SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "django-insecure-" + "x" * 60, "ALLOWED_HOSTS": "a"}, "SECRET_KEY"),
        ({"SECRET_KEY": secrets.token_urlsafe(64)}, "ALLOWED_HOSTS must list"),
    ],
)
def test_without_debug_an_insecure_configuration_refuses_to_start(env, needle):
    result = run_django({"DEBUG": "0", **env}, "check")
    assert result.returncode != 0
    assert needle in result.stderr


def test_the_deploy_checklist_passes_in_production_mode():
    result = run_django(
        {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "mg.example"},
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_celery_is_configured_for_reliability():
    from config.celery import app

    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert {q.name for q in conf.task_queues} == {"quick", "heavy"}


def test_beat_sweeps_for_lost_jobs_as_often_as_running_jobs_beat():
    from datetime import timedelta

    from django.conf import settings

    from config.celery import app

    sweep = app.conf.beat_schedule["requeue-stale-jobs"]
    assert sweep["task"] == "common.tasks.requeue_stale_jobs"
    assert sweep["schedule"] == timedelta(seconds=settings.JOB_HEARTBEAT_SECONDS)
    assert settings.JOB_HEARTBEAT_SECONDS == 15 and settings.JOB_STALE_AFTER_SECONDS == 60
    assert settings.JOB_RESEND_AFTER_SECONDS == 30


def test_a_stale_threshold_under_three_heartbeats_refuses_to_start():
    env = {"DEBUG": "1", "JOB_HEARTBEAT_SECONDS": "15", "JOB_STALE_AFTER_SECONDS": "30"}
    result = run_django(env, "check")
    assert result.returncode != 0
    assert "JOB_STALE_AFTER_SECONDS must be at least three JOB_HEARTBEAT_SECONDS" in result.stderr


def test_a_visibility_timeout_within_the_hard_time_limit_refuses_to_start():
    """Redis would hand a still-running task to a second worker."""
    env = {"DEBUG": "1", "CELERY_TIME_LIMIT": "600", "CELERY_VISIBILITY_TIMEOUT": "600"}
    result = run_django(env, "check")
    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT (600 s) must exceed CELERY_TIME_LIMIT" in result.stderr
    env["CELERY_VISIBILITY_TIMEOUT"] = "601"
    env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/15"
    result = run_django(
        env,
        "shell",
        "-c",
        "from config.celery import app; "
        "print(app.conf.broker_transport_options['visibility_timeout'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "601"


def test_links_that_leave_a_request_are_built_on_site_url_from_the_environment():
    script = (
        "from common.links import absolute_url; from django.conf import settings; "
        "print(absolute_url('governance:review', 'credit', 3)); print(settings.SERVE_URL)"
    )
    result = run_django(
        {"DEBUG": "1", "SITE_URL": "https://modelgate.example/", "SERVE_PORT": "9001"},
        "shell",
        "-v0",
        "-c",
        script,
    )
    assert result.returncode == 0, result.stderr
    review, serve = result.stdout.split()
    assert review == "https://modelgate.example/models/credit/versions/3/review/"
    assert serve == "http://127.0.0.1:9001"
    if "SITE_URL" not in os.environ:
        default = run_django({"DEBUG": "1"}, "shell", "-v0", "-c", script)
        assert default.stdout.split()[0].startswith("http://127.0.0.1:8000/models/credit/")


def test_each_blob_kind_gets_its_storage_from_the_environment():
    script = (
        "from django.core.files.storage import storages; "
        "[print(k, type(storages[k]).__name__, getattr(storages[k], 'bucket_name', '-'), "
        "getattr(storages[k], 'endpoint_url', '-'), getattr(storages[k], 'file_overwrite', '-'))"
        " for k in ('artifacts', 'datasets', 'batches', 'profiles')]"
    )
    env = {
        "DEBUG": "1",
        "BLOB_STORAGE": "s3",
        "S3_BUCKET": "blobs",
        "S3_BUCKET_ARTIFACTS": "models",
        "S3_ENDPOINT_URL": "http://minio.internal:9000",
        "BLOB_STORAGE_PROFILES": "local",
    }
    result = run_django(env, "shell", "-v0", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == [
        "artifacts S3Storage models http://minio.internal:9000 False",
        "datasets S3Storage blobs http://minio.internal:9000 False",
        "batches S3Storage blobs http://minio.internal:9000 False",
        "profiles FileSystemStorage - - -",
    ]
    missing = run_django({"DEBUG": "1", "BLOB_STORAGE": "s3", "S3_BUCKET": ""}, "check")
    assert missing.returncode != 0 and "S3_BUCKET" in missing.stderr
