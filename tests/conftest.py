"""Shared fixtures: personas, grants, artifacts, an isolated broker, a real worker.

Personas (as in the demo): owner, validator, compliance, auditor, bot
(pipeline service account), viewer (view-only on the model), outsider (no
rights at all).
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
from rest_framework.test import APIClient

from common.apps import AUDITORS_GROUP
from common.jobs import job_claim
from registry import services
from registry.cache import resolution_clear
from registry.models import RegisteredModel, RegistrationJob
from tests.processes import ARTIFACT_DIR, RealProcess, RealProcesses, stop
from tests.processes import ROOT as ROOT  # imported from here by many tests
from tests.processes import start_worker as start_worker

# Fixtures for tests of evidence producers (``filed``, ``policy``), and the demo's data
# loaded once per session (``demo_data``).
pytest_plugins = ["tests.evidence_support", "tests.demo_support"]


# --- environment ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings: Any, tmp_path: Path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    storages = dict(settings.STORAGES)
    for kind in settings.BLOB_KINDS:
        storages[kind] = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        }
    settings.STORAGES = storages
    settings.BLOB_CACHE_DIR = str(tmp_path / "blob-cache")
    settings.AXES_ENABLED = False
    resolution_clear()  # ids are reused across rolled-back tests


@pytest.fixture(autouse=True, scope="session")
def _flush_by_delete() -> Iterator[None]:
    """A transactional test (``transaction=True``, ``live_server``, ``page``) ends with
    Django's ``flush``: on PostgreSQL one TRUNCATE of every table (60-odd), each a new
    file on disk, 1-3 s a test. Here the same flush empties only the tables that hold
    rows, by DELETE in its one transaction (Django's foreign keys are deferred, so the
    order does not matter), and by TRUNCATE those whose triggers refuse a DELETE (the
    append-only audit table): the same empty database, then the same post_migrate
    (content types, permissions, default groups and policies). A flush that resets
    sequences or cascades (asked for by a test) is Django's own."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield
        return
    operations = type(connection.ops)
    truncate = operations.sql_flush

    def sql_flush(
        self: Any,
        style: Any,
        tables: list[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        if reset_sequences or allow_cascade or not tables:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        # Table names from Django's introspection, quoted: no input reaches this SQL.
        with self.connection.cursor() as cursor:
            holds = ", ".join(f"EXISTS (SELECT 1 FROM {self.quote_name(t)})" for t in tables)  # noqa: S608
            cursor.execute(f"SELECT ARRAY[{holds}]")
            filled = [
                t for t, has_rows in zip(tables, cursor.fetchone()[0], strict=True) if has_rows
            ]
            cursor.execute(
                "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
            )
            guarded = {row[0] for row in cursor.fetchall()}
        truncated = [self.quote_name(t) for t in filled if t in guarded]
        sql = [f"TRUNCATE {', '.join(truncated)} CASCADE;"] if truncated else []
        deleted = [f"DELETE FROM {self.quote_name(t)};" for t in filled if t not in guarded]  # noqa: S608
        return sql + deleted

    operations.sql_flush = sql_flush
    yield
    operations.sql_flush = truncate


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker no other process uses: a Redis DB of its own or a private folder.

    The Redis DB number is TEST_BROKER_DB (default 14), so that two test runs
    on one machine can each have their own.
    """
    from config.celery import app

    configured = settings.CELERY_BROKER_URL
    if configured.startswith("redis://"):
        base = configured.rsplit("/", 1)[0] if configured.count("/") > 2 else configured
        url = f"{base}/{os.environ.get('TEST_BROKER_DB', '14')}"
        app.conf.broker_url = url
        app.conf.broker_transport_options = {"visibility_timeout": 3600}
    else:
        folder = tmp_path_factory.mktemp("celery")
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir()
        url = "filesystem://localhost//"
        options = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
        }
        app.conf.broker_url = url
        app.conf.broker_transport_options = options
        os.environ["TEST_CELERY_FS_DIR"] = str(folder)
    # Celery reads CELERY_BROKER_URL from the environment before its own config.
    os.environ["CELERY_BROKER_URL"] = url
    assert app.conf.broker_url == url
    if url.startswith("redis"):
        with app.connection_for_write() as conn:
            for queue in ("quick", "heavy"):
                conn.default_channel.queue_purge(queue)
    yield url


@pytest.fixture(autouse=True, scope="session")
def _isolated_broker(broker_url: str) -> None:
    """Every test sends to the private broker, never to a developer's worker."""


# --- people --------------------------------------------------------------------


@dataclass
class Personas:
    owner: User
    validator: User
    compliance: User
    auditor: User
    bot: User
    viewer: User
    outsider: User
    team: Group


def make_user(
    username: str, *groups: Group, password: str = "correct-horse-9", **extra: Any
) -> User:
    user = User.objects.create_user(
        username=username, password=password, email=f"{username}@example.com", **extra
    )
    for group in groups:
        user.groups.add(group)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def personas(db: Any) -> Personas:
    creators, _ = Group.objects.get_or_create(name="ml-engineers")
    creators.permissions.add(Permission.objects.get(codename="add_registeredmodel"))
    team, _ = Group.objects.get_or_create(name="credit-risk")
    auditors = Group.objects.get(name=AUDITORS_GROUP)
    return Personas(
        owner=make_user("owner", creators, team),
        validator=make_user(
            "validator",
            Group.objects.get_or_create(name="validation")[0],
            Group.objects.get_or_create(name=settings.GOVERNANCE_VALIDATOR_GROUP)[0],
        ),
        compliance=make_user(
            "compliance", Group.objects.get_or_create(name=settings.GOVERNANCE_COMPLIANCE_GROUP)[0]
        ),
        auditor=make_user("auditor", auditors, is_staff=True),
        bot=make_user("pipeline-bot", creators),
        viewer=make_user("viewer"),
        outsider=make_user("outsider"),
        team=team,
    )


def grant(model: RegisteredModel, user: User, role: str) -> User:
    """Give ``user`` a role on ``model`` (through the service) and return a fresh instance."""
    services.registered_model_grant(actor=model.owner, model=model, role=role, user=user)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def without_alias_gates(settings: Any) -> Iterator[None]:
    """Registry tests of alias rights alone: no governance gate, no always-protected names."""
    from registry import gates

    settings.ALWAYS_PROTECTED_ALIASES = []
    saved = list(gates._alias_gates)
    gates._alias_gates.clear()
    yield
    gates._alias_gates[:] = saved


# --- data and artifacts -----------------------------------------------------------


def training_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(1),
            "income": rng.lognormal(10, 0.5, n).round(2),
            "score": rng.random(n),
        }
    )
    frame["label"] = ((frame["score"] + rng.random(n) * 0.3) > 0.6).astype("int64")
    return frame


FEATURES = ["age", "income", "score"]
SIGNATURE = [{"name": name, "dtype": "float64"} for name in FEATURES]


@cache
def classifier_bytes(seed: int = 0) -> bytes:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    frame = training_frame(seed=seed)
    return sio.dumps(LogisticRegression(max_iter=200).fit(frame[FEATURES], frame["label"]))


@cache
def regressor_bytes() -> bytes:
    import skops.io as sio
    from sklearn.linear_model import Ridge

    frame = training_frame()
    return sio.dumps(Ridge().fit(frame[FEATURES], frame["score"]))


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# --- domain helpers -------------------------------------------------------------------


def create_model(owner: User, name: str = "credit", **fields: Any) -> RegisteredModel:
    defaults = {"task": "classification", "risk_tier": "high", "team": None}
    defaults.update(fields)
    return services.registered_model_create(actor=owner, name=name, **defaults)


def register(
    model: RegisteredModel, actor: User, artifact: bytes | None = None, **kwargs: Any
) -> Any:
    kwargs.setdefault("signature_inputs", SIGNATURE)
    return services.model_version_register(
        actor=actor, model=model, artifact=io.BytesIO(artifact or classifier_bytes()), **kwargs
    )


def validate(version: Any) -> Any:
    """Run the worker's half of registration in-process."""
    job = job_claim(RegistrationJob, version.registration_job.pk)
    assert job is not None
    return services.model_version_validate(job=job)


def ready_version(model: RegisteredModel, actor: User, **kwargs: Any) -> Any:
    version = validate(register(model, actor, **kwargs))
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def model(personas: Personas) -> RegisteredModel:
    credit = create_model(personas.owner, team=personas.team)
    grant(credit, personas.viewer, "viewer")
    grant(credit, personas.bot, "contributor")
    return credit


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# --- a real Celery worker ----------------------------------------------------------


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def storage_env(config: dict[str, Any]) -> dict[str, str]:
    """The environment that gives another process the blob storage ``config`` describes."""
    options = config["OPTIONS"]
    if config["BACKEND"].endswith("FileSystemStorage"):
        return {"BLOB_STORAGE": "local", "ARTIFACT_ROOT": options["location"]}
    return {
        "BLOB_STORAGE": "s3",
        "S3_BUCKET": options["bucket_name"],
        "S3_ENDPOINT_URL": options["endpoint_url"],
        "S3_REGION": options["region_name"],
        "S3_ACCESS_KEY_ID": options["access_key"],
        "S3_SECRET_ACCESS_KEY": options["secret_key"],
    }


# Started one way (tests/processes.py); the names tests import from here.
WorkerProcess = RealProcess


def stop_worker(worker: RealProcess, sig: int = signal.SIGTERM) -> None:
    stop(worker, sig, timeout=30)


@pytest.fixture
def worker_env(
    broker_url: str, settings: Any, tmp_path: Path, django_db_setup: Any
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": broker_url,
            "BLOB_CACHE_DIR": str(tmp_path / "worker-blob-cache"),
            "DEBUG": "1",
            "SECRET_KEY": settings.SECRET_KEY,
            # Jobs beat every half second and are stale after four missed beats.
            "JOB_HEARTBEAT_SECONDS": "0.5",
            "JOB_STALE_AFTER_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(storage_env(settings.STORAGES["artifacts"]))
    if os.environ.get("TEST_CELERY_FS_DIR"):
        env["CELERY_FS_DIR"] = os.environ["TEST_CELERY_FS_DIR"]
    return env


@pytest.fixture
def real_processes(
    worker_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[RealProcesses]:
    """Starts real processes (worker, beat, web, serve) on ``worker_env`` for one test;
    kills those still running at its end and keeps their logs (tests/processes.py)."""
    label = re.sub(r"[^\w.-]+", "_", request.node.name)[:80]
    started = RealProcesses(worker_env, tmp_path, label)
    yield started
    started.close()


@pytest.fixture
def celery_worker(real_processes: RealProcesses) -> RealProcess:
    """A real ``celery worker`` process on the test database and the private broker."""
    return real_processes.worker()


def wait_for(predicate: Any, timeout: float = 60, interval: float = 0.2, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")


# --- an S3-compatible server ------------------------------------------------------

S3_KEYS = {"access_key": "testing", "secret_key": "testing-secret"}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 (a free port); yields its endpoint URL."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - our URL
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto server did not start:\n" + log.read_text()) from None
            time.sleep(0.2)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=10)


@pytest.fixture
def s3_storage(s3_server: str, settings: Any, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Every blob kind in a fresh bucket of the S3 server; returns the storage config."""
    import boto3

    bucket = f"t-{abs(hash(request.node.nodeid)) % 10**12}-{time.monotonic_ns() % 10**6}"
    boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS["access_key"],
        aws_secret_access_key=S3_KEYS["secret_key"],
    ).create_bucket(Bucket=bucket)
    from config.settings import s3_storage_config

    config = s3_storage_config(bucket, endpoint_url=s3_server)
    config["OPTIONS"].update(S3_KEYS)
    storages = dict(settings.STORAGES)
    for kind in settings.BLOB_KINDS:
        storages[kind] = config
    settings.STORAGES = storages
    return config


# --- a real browser ------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(
                f"REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls
    # made by the test body are safe (they are not inside that loop's coroutines).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15000)
    yield tab
    ARTIFACT_DIR.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACT_DIR / f"{request.node.name}-final.png"), full_page=True)
    context.close()


def log_in(page: Any, username: str, password: str = "correct-horse-9") -> None:
    page.goto("/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def shot(page: Any, name: str) -> None:
    ARTIFACT_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACT_DIR / f"{name}.png"), full_page=True)
