"""Scaling out on one machine: job throughput with one worker host and with two, serving
throughput with one serving process and with two.

    .venv/bin/python bench/hosts_bench.py [--evaluations 40] [--checks 60] [--seconds 10]

What it does (prints figures; never a test):
1. creates the database ``modelgate_hosts_bench`` on the local PostgreSQL (dropping
   an old one) and migrates it; starts moto's S3 server on 127.0.0.1 (a free port)
   with one bucket: every stored byte goes there, as on several machines;
2. seeds, in this process: a classifier (scikit-learn's LogisticRegression on three
   columns), a ready version, an evaluation dataset of ``--rows`` rows, a prediction
   batch of the same size (shifted) and a drift monitor; the ``production``
   environment on that version (``ALWAYS_PROTECTED_ALIASES`` emptied for this
   scratch database, as in bench/serving_bench.py: no approvals needed), a service
   account with the serving role and a token;
3. job throughput: one worker "host" (``celery worker -Q quick,heavy --concurrency 1``
   in its own working directory, TMPDIR, VAR_DIR and blob cache), then a second one
   beside it. For each, ``--evaluations`` evaluations (``heavy_evaluate``: metrics
   and permutation importance on the dataset) and ``--checks`` drift checks
   (``heavy_run_check``, exact KS on a batch of ``--batch-rows`` rows) are queued at
   once; the figure is
   jobs per minute from the commit that queues them all to the last job's
   ``finished_at``. Each new host first runs a few jobs (its blob cache fills from
   the bucket);
4. serving throughput: one serving process (``gunicorn -c config/gunicorn_serve.py``,
   one gthread worker x 16 threads, prediction logging on) driven by two wrk runs at
   once (keep-alive, 8 connections each, a one-row body, each request its own
   ``X-Request-ID``), then two serving processes on two ports, one wrk run on each,
   at the same time; the figure is the sum of the two runs' requests per second.
   The same clients in both cases: only the number of serving processes changes.

Each comparison runs one, two, then one again (the second host stopped), since the
machine's load drifts while it runs; the ratio is two over the mean of the ones.

Everything shares the machine's cores (PostgreSQL, Redis, moto, wrk, the other
host), so the ratio, not the absolute figure, is what counts; the load average is
printed before each measure.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.request import Request, urlopen

import serving_bench as sb  # bench/ is on sys.path when this script runs

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / ".hosts-bench"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "modelgate_hosts_bench"
FEATURES = ["age", "income", "score"]
MODEL = "hosts-bench"
PATH = f"/serve/{MODEL}/production/invocations"
WINDOWS = itertools.count(1)  # seconds after seeding: each check's own window end


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def frame(n: int, seed: int = 0, shift: float = 0.0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, n).round(1),
            "income": rng.lognormal(10 + 0.5 * shift, 0.5, n).round(2),
            "score": rng.random(n),
        }
    )
    data["label"] = ((data["score"] + rng.random(n) * 0.3) > 0.6).astype("int64")
    return data


# --- processes ------------------------------------------------------------------------


def start_moto(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=(folder / "moto.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            with urlopen(f"{url}/moto-api/", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)
    sys.exit("moto's S3 server did not start: " + (folder / "moto.log").read_text()[-2000:])


def host_env(env: dict[str, str], root: Path) -> dict[str, str]:
    """A host's own folders; the database, broker and bucket from ``env``."""
    for name in ("cwd", "tmp", "var", "blob-cache"):
        (root / name).mkdir(parents=True, exist_ok=True)
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(root / "tmp"),
        "VAR_DIR": str(root / "var"),
        "BLOB_CACHE_DIR": str(root / "blob-cache"),
    }


def start_worker(env: dict[str, str], root: Path, name: str) -> subprocess.Popen:
    log = root / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "quick,heavy",
         "--concurrency", "1", "-l", "info", "--without-mingle", "--without-gossip",
         "-n", f"{name}@%h"],
        cwd=root / "cwd", env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    for _ in range(600):
        if "ready." in log.read_text(errors="replace"):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.2)
    sys.exit(f"worker {name} did not start:\n" + log.read_text()[-3000:])


def start_serve(env: dict[str, str], root: Path, port: int) -> subprocess.Popen:
    serve_env = {
        **env,
        "SERVE_PORT": str(port),
        "SERVE_WORKERS": "1",
        "SERVE_THREADS": "16",
        "PROMETHEUS_MULTIPROC_DIR": str(root / "var" / "prometheus-serve"),
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c",
         str(ROOT / "config" / "gunicorn_serve.py"), "config.wsgi", "--log-level", "warning"],
        cwd=root / "cwd", env=serve_env, stdout=(root / "serve.log").open("ab"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_serving(port: int, token: str) -> None:
    body = (OUT / "one-row.json").read_bytes()
    headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
    for _ in range(600):
        try:
            request = Request(f"http://127.0.0.1:{port}{PATH}", data=body, headers=headers)
            with urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.3)
    sys.exit(f"the serving process on {port} did not answer")


# --- the database, in this process ------------------------------------------------------


def seed(rows: int, batch_rows: int) -> dict[str, object]:
    import pyarrow as pa
    import skops.io as sio
    from django.contrib.auth.models import User
    from django.db import transaction
    from sklearn.linear_model import LogisticRegression

    from common.auth import token_issue
    from common.jobs import job_claim
    from lifecycle import deployments
    from lifecycle.models import Deployment
    from monitoring import services as monitoring
    from registry import services
    from registry.models import RegistrationJob

    owner = User.objects.create_user("bench-owner", is_superuser=True)
    caller = User.objects.create_user("bench-serving")
    model = services.registered_model_create(
        actor=owner, name=MODEL, task="classification", risk_tier="low"
    )
    training = frame(2000)
    buffer = io.BytesIO()
    training.to_parquet(buffer, index=False)
    buffer.seek(0)
    dataset = services.dataset_upload(actor=owner, model=model, name="training",
                                      role="training", upload=buffer, filename="t.parquet")  # fmt: skip
    estimator = LogisticRegression(max_iter=300).fit(training[FEATURES], training["label"])
    version = services.model_version_register(
        actor=owner, model=model, artifact=io.BytesIO(sio.dumps(estimator)),
        training_dataset=dataset, target_column="label",
    )  # fmt: skip
    with transaction.atomic():
        job = job_claim(RegistrationJob, version.registration_job.pk)
    version = services.model_version_validate(job=job)
    assert version.status == "ready", version.status_reason
    buffer = io.BytesIO()
    frame(rows, seed=4).to_parquet(buffer, index=False)
    buffer.seek(0)
    holdout = services.dataset_upload(actor=owner, model=model, name="holdout",
                                      role="evaluation", upload=buffer, filename="h.parquet")  # fmt: skip
    batch = frame(batch_rows, seed=1, shift=1.0)[FEATURES]
    batch.insert(0, "request_id", [f"r{i}" for i in range(batch_rows)])
    start = datetime.now(UTC) - timedelta(hours=1)
    batch["timestamp"] = [start + timedelta(seconds=i % 3000) for i in range(batch_rows)]
    batch["prediction"] = estimator.predict(batch[FEATURES])
    monitoring.prediction_batch_ingest(
        actor=owner, version=version, batch_id="shifted",
        table=pa.Table.from_pandas(batch, preserve_index=False),
    )  # fmt: skip
    monitor = monitoring.monitor_create(
        actor=owner, model=model, version=version, name="drift", checks=["drift"],
        min_rows=50, drift_method="rows",
    )  # fmt: skip
    services.registered_model_grant(actor=owner, model=model, role="serving", user=caller)
    production = deployments.environment_create(actor=owner, model=model, name="production")
    deployment = deployments.deployment_start(actor=owner, environment=production, version=version)
    with transaction.atomic():
        job = job_claim(Deployment, deployment.pk)
    deployments.deployment_run(job=job)
    (OUT / "one-row.json").write_text(json.dumps({"inputs": [[40.0, 1000.0, 0.5]]}))
    return {
        "owner": owner,
        "version": version,
        "holdout": holdout,
        "monitor": monitor,
        "token": token_issue(user=caller, ttl=timedelta(days=1))[0],
        "seeded_at": datetime.now(UTC).replace(microsecond=0),
    }


def jobs_per_minute(kind: str, count: int, seeded: dict[str, object]) -> tuple[float, float]:
    """Queue ``count`` jobs at once; (jobs per minute, seconds) to the last one's end."""
    from django.db import transaction
    from django.db.models import Max

    from lifecycle.models import Evaluation
    from lifecycle.services import evaluation_start
    from monitoring.models import CheckRun
    from monitoring.services import check_run_request

    ids = []
    with transaction.atomic():  # every id is sent when this commits: all queued at once
        for _ in range(count):
            if kind == "evaluation":
                ids.append(evaluation_start(actor=seeded["owner"], version=seeded["version"],
                                            dataset=seeded["holdout"], target_column="label").pk)  # fmt: skip
            else:  # each its own window: a window asked for again is the same run
                end = seeded["seeded_at"] + timedelta(seconds=next(WINDOWS))
                run, created = check_run_request(actor=seeded["owner"], monitor=seeded["monitor"],
                                                 window_end=end)  # fmt: skip
                assert created
                ids.append(run.pk)
        started = time.time()
    model = Evaluation if kind == "evaluation" else CheckRun
    rows = model.objects.filter(pk__in=ids)
    deadline = time.monotonic() + 1800
    while rows.exclude(status__in=("succeeded", "failed")).exists():
        if time.monotonic() > deadline:
            sys.exit(f"{kind}s did not finish")
        time.sleep(0.1)
    failed = rows.filter(status="failed").first()
    if failed is not None:
        sys.exit(f"{kind} {failed.pk} failed: {failed.error}")
    seconds = rows.aggregate(last=Max("finished_at"))["last"].timestamp() - started
    return count / seconds * 60, seconds


def wrk_rps(port: int, token: str, seconds: int) -> dict[str, float]:
    return sb._wrk(f"http://127.0.0.1:{port}{PATH}", token, "one-row", 8, seconds)


def concurrently(*calls: Callable[[], dict[str, float]]) -> list[dict[str, float]]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--evaluations", type=int, default=40)
    parser.add_argument("--checks", type=int, default=60)
    parser.add_argument("--rows", type=int, default=20000, help="rows of the evaluation set")
    parser.add_argument("--batch-rows", type=int, default=200000, help="rows of each check")
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    OUT.mkdir(exist_ok=True)
    sb.OUT = OUT  # serving_bench's wrk runner reads its body from OUT/<body>.json
    sb.sh("psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}")
    sb.sh("psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {DB_NAME}")
    work = Path(tempfile.mkdtemp(prefix="hosts-bench-"))
    moto, s3_url = start_moto(work)
    processes: list[subprocess.Popen] = []
    try:
        import boto3

        keys = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
        boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", **keys).create_bucket(
            Bucket="modelgate"
        )
        env = sb.production_env(f"{PG}/{DB_NAME}")
        env.update(
            OPENBLAS_NUM_THREADS="1",
            BLOB_STORAGE="s3",
            S3_BUCKET="modelgate",
            S3_ENDPOINT_URL=s3_url,
            S3_ACCESS_KEY_ID=keys["aws_access_key_id"],
            S3_SECRET_ACCESS_KEY=keys["aws_secret_access_key"],
        )
        here = host_env(env, work / "bench")
        sb.sh(sys.executable, "manage.py", "migrate", "-v0", env=here)
        sb._purge_broker(here)
        os.environ.update(here)
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        print(
            f"seeding: a classifier, {args.rows} rows to evaluate, {args.batch_rows} to check ..."
        )
        seeded = seed(args.rows, args.batch_rows)

        hosts = [host_env(env, work / f"host-{name}") for name in ("a", "b")]
        print(
            f"{os.cpu_count()} CPUs; each worker host: celery --concurrency 1 in its own "
            f"folders; storage: moto S3; PostgreSQL + Redis"
        )
        print(f"{'':>24} | {'evaluations/min':>15} {'s':>6} | {'drift checks/min':>16} "
              f"{'s':>6} | load average")  # fmt: skip
        # 1 host, 2 hosts, then 1 again (host B stopped): the machine's load drifts (other
        # work shares it), and the two one-host rows show by how much.
        workers = [start_worker(hosts[0], work / "host-a", "a")]
        processes.append(workers[0])
        figures: dict[str, list[float]] = {"1": [], "2": []}
        for count in (1, 2, 1):
            if count == 2:
                workers.append(start_worker(hosts[1], work / "host-b", "b"))
                processes.append(workers[1])
            elif len(workers) == 2:
                stop(workers.pop())
                processes.pop()
            jobs_per_minute("evaluation", 4 * count, seeded)  # warm: caches, imports
            jobs_per_minute("check", 4 * count, seeded)
            load = sb._load()
            evaluations, e_seconds = jobs_per_minute("evaluation", args.evaluations, seeded)
            checks, c_seconds = jobs_per_minute("check", args.checks, seeded)
            figures[str(count)] += [evaluations, checks]
            label = f"{count} worker host{'s' if count > 1 else ''}"
            print(f"{label:>24} | {evaluations:>15.0f} {e_seconds:>6.1f} | {checks:>16.0f} "
                  f"{c_seconds:>6.1f} | {load}", flush=True)  # fmt: skip
        one = figures["1"]  # evaluations, checks, evaluations, checks
        print(f"{'ratio 2 / mean of 1':>24} | {2 * figures['2'][0] / (one[0] + one[2]):>14.2f}x "
              f"{'':>6} | {2 * figures['2'][1] / (one[1] + one[3]):>15.2f}x")  # fmt: skip

        token = str(seeded["token"])
        ports = [free_port(), free_port()]
        print(f"\nserving, one row, keep-alive, {args.seconds}s runs of wrk -c8, two at once "
              "(on one port, or one on each), one gthread worker x 16 threads per process")  # fmt: skip
        print(f"{'':>24} | {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | load average")
        serves = [start_serve(hosts[0], work / "host-a", ports[0])]
        processes.append(serves[0])
        wait_serving(ports[0], token)
        wrk_rps(ports[0], token, 3)  # warm-up
        served: dict[int, list[float]] = {1: [], 2: []}
        for count in (1, 2, 1):
            if count == 2:
                serves.append(start_serve(hosts[1], work / "host-b", ports[1]))
                processes.append(serves[1])
                wait_serving(ports[1], token)
                wrk_rps(ports[1], token, 3)
            elif len(serves) == 2:
                stop(serves.pop())
                processes.pop()
            load = sb._load()
            targets = ports if count == 2 else [ports[0], ports[0]]
            runs = concurrently(*(lambda p=p: wrk_rps(p, token, args.seconds) for p in targets))
            served[count].append(sum(r["rps"] for r in runs))
            label = f"{count} serving process{'es' if count > 1 else ''}"
            print(f"{label:>24} | {served[count][-1]:>7.0f} "
                  f"{max(r['p50'] for r in runs):>7.2f} {max(r['p99'] for r in runs):>7.2f} "
                  f"{sum(r['errors'] for r in runs):>6} | {load}", flush=True)  # fmt: skip
        ratio = 2 * served[2][0] / sum(served[1])
        print(f"{'ratio 2 / mean of 1':>24} | {ratio:>6.2f}x")
        print(f"load average {sb._load()} at the end")
    finally:
        for process in reversed(processes):
            stop(process)
        stop(moto)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
