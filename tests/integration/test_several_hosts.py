"""ModelGate on several "hosts": two worker hosts, two web processes and two serving
processes, against one PostgreSQL, one Redis and one S3 server (moto's), and nothing
else in common.

Each host is its own working directory, TMPDIR, VAR_DIR and blob cache; every stored
byte is in the bucket. Host A runs a worker, a web process and a serving process;
host B the same plus beat (exactly one, whose stale-job sweep runs every second).
Through the web processes' API, alternating between them: datasets, registrations,
evaluations, monitors, prediction batches, drift checks, deployments; predictions
from both serving processes. Then host A's worker is killed (SIGKILL) mid-job.

What must hold: every job row ends succeeded and recorded its outcome once (one
audit event per job, one succeeded attempt in the two workers' own metrics, the
jobs shared between both hosts); both serving processes serve the same version for
the same request id, and a reroute made through one web process reaches both
within a couple of seconds; the killed host's job is requeued by the sweep and
finished on the other, once.

Bounded: every wait has a timeout; about a minute on a loaded 2-core machine.
"""

from __future__ import annotations

import datetime as dt
import http.client
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.auth import token_issue
from common.models import AuditEvent
from governance import reviews
from lifecycle import scoring
from lifecycle.models import Deployment, Environment, Evaluation
from monitoring.models import CheckRun, ProfileBuild
from registry.models import ModelVersion, RegistrationJob
from tests.conftest import (
    FEATURES,
    classifier_bytes,
    grant,
    storage_env,
    training_frame,
    wait_for,
)
from tests.governance.review_support import sign
from tests.integration.test_serving_processes import call
from tests.lifecycle.deploy_support import low_risk_model
from tests.monitoring.conftest import prediction_frame
from tests.processes import (
    ARTIFACT_DIR,
    ROOT,
    RealProcess,
    free_port,
    start_beat,
    start_configured_web,
    start_serve,
    start_worker,
    stop,
)

sys.path.insert(0, str(ROOT / "client"))

from modelgate import ModelGate

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Jobs beat every half second and are stale after eight missed beats: a loaded
# machine may stall a process for a second or two, rarely for four.
HEARTBEAT, STALE = "0.5", "4"
MONITOR = {"version": "1", "checks": ["drift"], "min_rows": 50, "drift_method": "rows"}


@dataclass
class Host:
    name: str
    root: Path
    env: dict[str, str]
    worker: RealProcess | None = None
    web: RealProcess | None = None
    serve: RealProcess | None = None
    metrics_port: int = 0

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    def worker_metrics(self) -> dict[tuple[str, str], float]:
        """Job attempts this host's worker ended, by (kind, outcome): its own endpoint."""
        connection = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
        return {
            (sample.labels["kind"], sample.labels["outcome"]): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "modelgate_jobs_finished_total"
        }


def host_env(base: dict[str, str], storage: dict[str, Any], root: Path) -> tuple[dict, int]:
    """A host's own folders; the shared services (database, broker, bucket) from ``base``."""
    folders = {name: root / name for name in ("cwd", "tmp", "var", "blob-cache")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    env = dict(base)
    env.pop("ARTIFACT_ROOT", None)
    env.update(storage_env(storage))
    port = free_port()
    env.update(
        PYTHONPATH=str(ROOT),  # the code, as installed on every host; nothing else shared
        TMPDIR=str(folders["tmp"]),
        VAR_DIR=str(folders["var"]),
        BLOB_CACHE_DIR=str(folders["blob-cache"]),
        JOB_HEARTBEAT_SECONDS=HEARTBEAT,
        JOB_STALE_AFTER_SECONDS=STALE,
        JOB_RESEND_AFTER_SECONDS="3",
        SERVE_POLL_SECONDS="0.2",
        WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(folders["var"] / "prometheus-worker"),
    )
    assert env["BLOB_STORAGE"] == "s3"
    return env, port


@pytest.fixture
def hosts(s3_storage, worker_env, tmp_path) -> Iterator[tuple[Host, Host, RealProcess]]:
    made = []
    for name in ("a", "b"):
        env, port = host_env(worker_env, s3_storage, tmp_path / f"host-{name}")
        made.append(Host(name, tmp_path / f"host-{name}", env, metrics_port=port))
    a, b = made
    beat: RealProcess | None = None
    errors: list[BaseException] = []

    def boot(host: Host, what: str) -> None:
        log = host.root / f"{what}.log"
        try:
            if what == "worker":
                host.worker = start_worker(host.env, log, "-n", f"{host.name}@%h", cwd=host.cwd)
            elif what == "web":
                # The web's own metrics folder, apart from the worker's.
                env = {**host.env, "PROMETHEUS_MULTIPROC_DIR": str(host.root / "var" / "pw")}
                host.web = start_configured_web(env, log, workers=1, cwd=host.cwd)
            else:
                env = {**host.env, "PROMETHEUS_MULTIPROC_DIR": str(host.root / "var" / "ps")}
                host.serve = start_serve(env, log, workers=1, cwd=host.cwd)
        except BaseException as exc:  # reported below, after every start has ended
            errors.append(exc)

    # Six processes boot at once (each imports Django): the slowest sets the pace.
    threads = [
        threading.Thread(target=boot, args=(host, what))
        for host in (a, b)
        for what in ("worker", "web", "serve")
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(timeout=120)
        if errors:
            raise errors[0]
        beat = start_beat(b.env, b.root / "beat.log", cwd=b.cwd)  # exactly one beat, on host B
        yield a, b, beat
    finally:
        # What still runs is killed at once (a graceful stop is not what this test checks).
        for process in [beat] + [p for h in (a, b) for p in (h.worker, h.web, h.serve)]:
            if process is not None:
                stop(process, signal.SIGKILL)
        ARTIFACT_DIR.mkdir(exist_ok=True)
        stamp = int(time.time() * 1000)
        for log in tmp_path.glob("host-*/*.log"):
            shutil.copy(log, ARTIFACT_DIR / f"hosts-{stamp}-{log.parent.name}-{log.name}")


def serve_once(port: int, token: str, request_id: str) -> str | None:
    """The version that answered one request (None if it failed)."""
    status, version, connection = call(port, token, request_id)
    connection.close()
    return version if status == 200 else None


def serves(
    hosts: tuple[Host, ...], token: str, version: str, request_id: str, within: float
) -> float:
    """Seconds until every host's serving process answers ``version`` to ``request_id``."""
    started = time.monotonic()
    for host in hosts:
        assert host.serve is not None
        port = host.serve.port
        wait_for(
            lambda port=port: serve_once(port, token, request_id) == version,
            timeout=within,
            interval=0.05,
            message=f"v{version} served by host {host.name}",
        )
    return time.monotonic() - started


def all_done(model: type, ids: list[int]) -> bool:
    statuses = set(model.objects.filter(pk__in=ids).values_list("status", flat=True))
    if "failed" in statuses:
        failed = model.objects.filter(pk__in=ids, status="failed").first()
        raise AssertionError(f"{model.__name__} {failed.pk} failed: {failed.error}")
    return statuses == {"succeeded"}


# Each job kind's outcome event, and what it names: the job row itself (pk), or the
# version the job was for.
OUTCOMES = {
    RegistrationJob: ("registry.version.ready", "version_id"),
    ProfileBuild: ("monitoring.profile.build", "after.version"),
    Evaluation: ("lifecycle.evaluation.completed", "pk"),
    CheckRun: ("monitoring.check.finish", "pk"),
    Deployment: ("lifecycle.deployment.succeeded", "pk"),
}


def test_two_worker_hosts_two_web_and_two_serving_processes_share_the_work_and_lose_nothing(
    hosts, personas, tmp_path
):
    a, b, _beat = hosts
    assert a.web and b.web and a.serve and b.serve
    model = low_risk_model(personas)  # "churn": the owner alone approves
    caller = grant(model, personas.compliance, "serving")
    serving_token = token_issue(user=caller)[0]
    bot = [ModelGate(f"http://127.0.0.1:{h.web.port}", token_issue(user=personas.bot)[0])
           for h in (a, b)]  # fmt: skip
    owner = [ModelGate(f"http://127.0.0.1:{h.web.port}", token_issue(user=personas.owner)[0])
             for h in (a, b)]  # fmt: skip

    # --- registration, evidence and monitoring, alternating between the web processes ----
    training = bot[0].upload_dataset("churn", training_frame(2000), name="training")
    holdout = bot[1].upload_dataset(
        "churn", training_frame(400, seed=4), name="holdout", role="evaluation"
    )
    numbers = []
    for seed in range(4):
        artifact = tmp_path / f"v{seed}.skops"
        artifact.write_bytes(classifier_bytes(seed))
        version = bot[seed % 2].register(
            str(artifact), model="churn", training_data=training["id"], target="label", wait=False
        )
        numbers.append(version["number"])
    versions = [bot[n % 2].wait_for_version("churn", n, timeout=90, progress=None) for n in numbers]
    assert [v["status"] for v in versions] == ["ready"] * 4, [v["status_reason"] for v in versions]

    evaluations = [
        bot[n % 2].request(
            "POST",
            f"models/churn/versions/{n}/evaluations/",
            json={"dataset": holdout["id"], "target_column": "label"},
        )["id"]
        for n in numbers
    ]
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # in the checks' window
    shifted = prediction_frame(1200, seed=1, shift=1.0, start=f"{an_hour_ago:%Y-%m-%dT%H:%M:%S}")
    batch = bot[1].log_predictions(
        "churn",
        1,
        shifted[[*FEATURES, "timestamp", "prediction"]],
        batch_id="shifted",
        request_ids=shifted["request_id"],
    )
    assert batch["row_count"] == 1200
    monitors = [
        owner[i % 2].request(
            "POST",
            "models/churn/monitors/",
            json={**MONITOR, "name": f"drift-{i}"},
        )["id"]
        for i in range(4)
    ]
    checks = [
        owner[i % 2].request("POST", f"models/churn/monitors/{pk}/run/")["id"]
        for i, pk in enumerate(monitors)
    ]
    wait_for(lambda: all_done(Evaluation, evaluations), timeout=90, message="the evaluations")
    wait_for(lambda: all_done(CheckRun, checks), timeout=90, message="the drift checks")
    # A drift baseline per ready version (and, if the batch came in before one was
    # built, a second pass over that version that summarizes it on the baseline).
    profiles = list(ProfileBuild.objects.values_list("pk", flat=True))
    assert set(ProfileBuild.objects.values_list("version__number", flat=True)) == set(numbers)
    wait_for(lambda: all_done(ProfileBuild, profiles), timeout=60, message="the baselines")
    for run in CheckRun.objects.filter(pk__in=checks):
        assert run.row_count == 1200
        assert "age" in [c["column"] for c in run.drift["columns"] if c["drifted"]]

    # Both hosts took jobs, each attempt counted where it ran: the two workers' own
    # counts of succeeded attempts add up to the succeeded job rows, so none ran twice.
    # (Read again while beat's monitor sweep may be adding a check.)
    def counted() -> tuple[dict[str, float], int] | None:
        done_by = {h.name: sum(v for (_, o), v in h.worker_metrics().items() if o == "succeeded")
                   for h in (a, b)}  # fmt: skip
        rows = sum(k.objects.filter(status="succeeded").count() for k in OUTCOMES)
        return (done_by, rows) if sum(done_by.values()) == rows else None

    done_by, rows = wait_for(counted, timeout=15, interval=0.5, message="attempts = job rows")
    assert rows >= len(numbers) + len(evaluations) + len(checks) + len(profiles)
    assert min(done_by.values()) > 0, done_by

    # --- a worker host dies mid-job ---------------------------------------------------------
    big = bot[0].upload_dataset(
        "churn", training_frame(30000, seed=9), name="big-holdout", role="evaluation"
    )

    def evaluate_on_big(count: int) -> list[int]:
        return [
            bot[i % 2].request(
                "POST",
                f"models/churn/versions/{numbers[i % 4]}/evaluations/",
                json={"dataset": big["id"], "target_column": "label"},
            )["id"]
            for i in range(count)
        ]

    def both_busy(ids: list[int]) -> str | None:
        """Two running at once: "busy"; all ended unseen: "ended"; else None."""
        statuses = Counter(Evaluation.objects.filter(pk__in=ids).values_list("status", flat=True))
        if statuses["running"] == 2:
            return "busy"
        return "ended" if all_done(Evaluation, ids) else None

    # Each worker runs one job at a time (concurrency 1, prefetch 1): when two run at
    # once, host A holds one of them. A job takes a fraction of a second, so a wave
    # may end unseen: then another (bounded).
    more: list[int] = []
    for _wave in range(4):
        more.extend(evaluate_on_big(6))
        if wait_for(lambda: both_busy(more), timeout=60, interval=0.01) == "busy":
            break
    else:
        pytest.fail("never saw both worker hosts busy at once")
    assert a.worker is not None
    stop(a.worker, signal.SIGKILL)  # the whole host's worker: no ack, no cleanup
    wait_for(lambda: all_done(Evaluation, more), timeout=90, message="the evaluations after")
    attempts = Counter(Evaluation.objects.filter(pk__in=more).values_list("attempts", flat=True))
    assert attempts == {1: len(more) - 1, 2: 1}, attempts  # the killed one, taken over once
    assert b.worker is not None and "'requeued': 1" in b.worker.output()

    # --- deployment and serving across the two serving processes ----------------------------
    for number in (1, 2):
        version = ModelVersion.objects.get(registered_model=model, number=number)
        reviews.review_submit(actor=personas.owner, version=version)
        sign(personas.owner, version)  # its evidence: the evaluation a worker filed
    owner[0].request("POST", "models/churn/environments/", json={"name": "production"})
    first = owner[0].deploy("churn", "production", 1, wait=True, wait_timeout=60)
    assert first["state"] == "succeeded", first["reason"]
    assert first["warm_report"]["note"] == "2 serving process(es) warmed"
    ids = [f"caller-{i}" for i in range(120)]
    serves((a, b), serving_token, "1", ids[0], within=5)

    # An A/B split set through web B: both processes route each request id alike.
    split = owner[1].deploy("churn", "production", 2, strategy="ab", share=0.5,
                            duration_seconds=3600, wait=True,
                            wait_for=("progressing", "succeeded", "failed", "aborted"),
                            wait_timeout=60)  # fmt: skip
    assert split["state"] == "progressing", split["reason"]
    salt = str(Environment.objects.get(registered_model=model, name="production").pk)
    routed = ["2" if scoring.goes_to_candidate(i, salt, 0.5) else "1" for i in ids]
    assert set(routed) == {"1", "2"}
    serves((a, b), serving_token, "2", ids[routed.index("2")], within=5)  # the split is on
    seen_a = [serve_once(a.serve.port, serving_token, i) for i in ids]
    seen_b = [serve_once(b.serve.port, serving_token, i) for i in ids]
    assert seen_a == seen_b == routed

    # Ended through web A on the candidate: both serve v2 within a couple of seconds.
    owner[0].deployment_action("churn", "production", split["id"], "promote")
    # The ids the split sent to v1 move to v2 on both processes.
    on_v1 = [i for i, v in zip(ids, routed, strict=True) if v == "1"]
    took = serves((a, b), serving_token, "2", on_v1[0], within=5)
    assert took < 3, took
    for host in (a, b):
        assert {serve_once(host.serve.port, serving_token, i) for i in on_v1} == {"2"}

    # --- each job once, whichever host took it ----------------------------------------------
    # Every job row of every kind, including the checks beat's monitor sweep queued,
    # ended succeeded, and its outcome is in the audit trail exactly once.
    for kind, (action, subject) in OUTCOMES.items():
        wait_for(
            lambda kind=kind: all_done(kind, list(kind.objects.values_list("pk", flat=True))),
            timeout=30,
            message=f"every {kind.__name__}",
        )
        rows = kind.objects.all()
        events = Counter(
            str(e.after["version"]) if subject == "after.version" else e.object_id
            for e in AuditEvent.objects.filter(action=action)
        )
        expected = {str(pk) for pk in rows.values_list(subject.replace("after.", ""), flat=True)}
        assert set(events) == expected, (action, events, expected)
        assert set(events.values()) == {1}, (action, events)
    assert Deployment.objects.count() == 2
    # No shared disk: each host fetched what it used from the bucket into its own cache.
    for host in (a, b):
        assert any((host.root / "blob-cache" / "entries").iterdir()), host.name
        assert "heavy_evaluate" in host.worker.output()
