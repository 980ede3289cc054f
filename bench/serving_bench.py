"""Prediction serving throughput and latency: ModelGate's serving process under wrk.

    .venv/bin/python bench/serving_bench.py [--seconds 10] [--workers 2] [--threads 16]

What it does (prints figures; never a test):
1. creates the database ``modelgate_serving_bench`` on the local PostgreSQL
   (dropping an old one) and migrates it; registers the demo's credit model
   (``demo.samples``: a scikit-learn pipeline with a StandardScaler and a
   OneHotEncoder in front of the estimator) twice: v1 the demo's gradient
   boosting, v2 its logistic regression; creates the ``production``
   environment, deploys v1 and routes 10 % of the requests (by request id) to
   v2: the 90/10 split; a service account with the serving role and a token.
   ``ALWAYS_PROTECTED_ALIASES`` is emptied for this scratch database so that
   the bench needs no approvals: governance acts when a version is deployed,
   never on the request path, so the figures do not depend on it;
2. starts a Celery worker (the prediction log's batches are filed by it,
   as in production) and the serving process
   (``gunicorn -c config/gunicorn_serve.py``: gthread workers that keep
   connections alive; prediction logging on) on 127.0.0.1:8078;
3. drives ``POST /serve/credit-default/production/invocations`` with wrk at 1,
   8 and 32 connections, single-row and 100-row ``dataframe_split`` bodies,
   each request with its own ``X-Request-ID`` (so the 90/10 split applies);
   then the single-row case at 8 clients with ``Connection: close`` (what
   every caller pays with gunicorn's sync workers); then Django's
   ``/healthz`` on the same process, as the machine's speed at that moment;
4. waits for the prediction log to drain and compares the rows the serving
   processes recorded (their ``/metrics``) with the rows stored in monitoring's
   prediction batches and the serving log: no lost prediction log.

The model's files are left in ``bench/.serving-bench/`` (the two skops
artifacts, a one-row and a hundred-row body) for a side-by-side run of
``mlflow models serve`` on the same model.

Targets (issue "Serving"): single-row throughput at 8 clients at least 3x
``mlflow models serve`` (~310 requests/s measured here, so ~930), p99 under
25 ms at 8 clients, zero errors, rows posted = rows stored. Client and server
share the machine's cores, so the figures include wrk's own CPU.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / ".serving-bench"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "modelgate_serving_bench"
PORT = 8078
PATH = "/serve/credit-default/production/invocations"

SEED = r"""
import io, json, os
import skops.io as sio
from django.contrib.auth.models import User
from django.db import transaction
from knox.models import AuthToken
from datetime import timedelta
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from common.jobs import job_claim
from demo import samples
from lifecycle import deployments
from lifecycle.models import Deployment
from registry import services
from registry.models import RegistrationJob

out = os.environ["BENCH_OUT"]
owner = User.objects.create_user("bench-owner", is_superuser=True)
bot = User.objects.create_user("bench-serving")
model = services.registered_model_create(actor=owner, name="credit-default", task="classification",
                                         risk_tier="high")
train = samples.credit_data(6000, seed=1)
X, y = train[samples.CREDIT_FEATURES], train[samples.CREDIT_TARGET]
frame = io.BytesIO(); train.to_parquet(frame, index=False)
dataset = services.dataset_upload(actor=owner, model=model, name="applications", role="training",
                                  upload=frame, filename="applications.parquet")
versions = []
for n, estimator in enumerate([HistGradientBoostingClassifier(max_iter=120, random_state=0),
                               LogisticRegression(max_iter=500)], start=1):
    blob = sio.dumps(samples.credit_pipeline(estimator).fit(X, y))
    open(f"{out}/credit-v{n}.skops", "wb").write(blob)
    version = services.model_version_register(actor=owner, model=model, artifact=io.BytesIO(blob),
                                              training_dataset=dataset, target_column="default")
    with transaction.atomic():
        job = job_claim(RegistrationJob, version.registration_job.pk)
    versions.append(services.model_version_validate(job=job))
services.registered_model_grant(actor=owner, model=model, role="serving", user=bot)
production = deployments.environment_create(actor=owner, model=model, name="production")
deployment = deployments.deployment_start(actor=owner, environment=production, version=versions[0])
with transaction.atomic():
    job = job_claim(Deployment, deployment.pk)
deployments.deployment_run(job=job)
production.refresh_from_db()
deployments.environment_split_set(actor=owner, environment=production, candidate=versions[1],
                                  share=0.1)
rows = X.head(100)
for name, data in (("one-row", rows.head(1)), ("hundred-rows", rows)):
    body = {"dataframe_split": {"columns": list(data.columns),
                                "data": json.loads(data.to_json(orient="values"))}}
    open(f"{out}/{name}.json", "w").write(json.dumps(body))
_, token = AuthToken.objects.create(user=bot, expiry=timedelta(days=1))
print("TOKEN=" + token)
"""

LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("prefix", string.format("t%d", #threads))
  table.insert(threads, thread)
end
function init(args)
  body = io.open("BODY_FILE"):read("*a")
end
request = function()
  counter = counter + 1
  local headers = {["Authorization"] = "Token TOKEN", ["Content-Type"] = "application/json",
                   ["X-Request-ID"] = string.format("%s-RUN-%d", prefix, counter)CLOSE}
  return wrk.format("POST", "PATH", headers, body)
end
"""

COUNT_STORED = r"""
from lifecycle.models import ServingLogBatch
from monitoring.models import PredictionBatch
from django.db.models import Sum
print("STORED", PredictionBatch.objects.aggregate(s=Sum("row_count"))["s"] or 0,
      ServingLogBatch.objects.aggregate(s=Sum("row_count"))["s"] or 0,
      ServingLogBatch.objects.aggregate(s=Sum("error_count"))["s"] or 0)
"""


def sh(*args: str, env: dict[str, str] | None = None, capture: bool = False) -> str:
    result = subprocess.run(args, env=env, cwd=ROOT, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    # Many threads per process make big batches (docs/serving.md has 1 and 2 workers).
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    parser.add_argument("--threads", type=int, default=16, help="gthread threads per worker")
    parser.add_argument("--clients", default="1,8,32")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    python = sys.executable
    OUT.mkdir(exist_ok=True)
    sh("psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}")
    sh("psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {DB_NAME}")
    var = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG}/{DB_NAME}",
        CELERY_BROKER_URL=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/13"),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
        VAR_DIR=str(var),
        ALWAYS_PROTECTED_ALIASES="",
        OMP_NUM_THREADS="1",
        SERVE_PORT=str(PORT),
        SERVE_WORKERS=str(args.workers),
        SERVE_THREADS=str(args.threads),
    )
    sh(python, "manage.py", "migrate", "-v0", env=env)
    print("seeding: the demo's credit pipeline, two versions, production split 90/10 ...")
    seeded = sh(
        python,
        "manage.py",
        "shell",
        "-v0",
        "-c",
        SEED,
        env={**env, "BENCH_OUT": str(OUT)},
        capture=True,
    )
    token = re.search(r"TOKEN=(\S+)", seeded).group(1)
    _purge_broker(env)

    worker = subprocess.Popen(
        [python, "-m", "celery", "-A", "config", "worker", "-Q", "quick,heavy", "--concurrency",
         "1", "-l", "warning", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    serve = subprocess.Popen(
        [str(Path(python).parent / "gunicorn"), "-c", "config/gunicorn_serve.py", "config.wsgi",
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{PORT}"
    try:
        _wait_ready(url, token)
        print(
            f"serving: gunicorn {args.workers} gthread workers x {args.threads} threads, "
            f"prediction logging on, PostgreSQL + Redis, {os.cpu_count()} CPUs, "
            f"{args.seconds}s per run, load average {os.getloadavg()}"
        )
        print(
            f"{'body':>12} {'clients':>8} {'req/s':>9} {'rows/s':>9} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'errors':>7}"
        )
        posted = 0
        _wrk(url, token, "one-row", 8, 3, quiet=True)  # warm-up
        for body, rows in (("one-row", 1), ("hundred-rows", 100)):
            for clients in [int(c) for c in args.clients.split(",")]:
                posted += _wrk(url, token, body, clients, args.seconds) * rows
        posted += _wrk(url, token, "one-row", 8, args.seconds, close=True)
        _healthz(url, args.seconds)
        recorded = _recorded(url)
        print("waiting for the prediction log to drain ...")
        stored = _wait_stored(env, python, recorded)
        print(
            f"prediction log: rows answered per wrk {posted} (wrk does not count the requests "
            f"in flight when it stops); recorded by the serving processes {recorded}; stored in "
            f"monitoring's prediction batches {stored[0]} and in the serving log {stored[1]} "
            f"(of which {stored[2]} refused requests)"
        )
    finally:
        for process in (serve, worker):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
        shutil.rmtree(var, ignore_errors=True)


def _purge_broker(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "purge", "-f", "-Q", "quick,heavy"],
        cwd=ROOT, env=env, capture_output=True, check=False,
    )  # fmt: skip


def _wait_ready(url: str, token: str) -> None:
    body = (OUT / "one-row.json").read_bytes()
    for _ in range(300):
        try:
            request = Request(
                url + PATH,
                data=body,
                headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
            )
            with urlopen(request, timeout=5) as response:
                if response.status == 200:
                    time.sleep(2)  # the other worker's loader finishes too
                    return
        except Exception:
            time.sleep(0.3)
    sys.exit("the serving process did not answer")


def _wrk(
    url: str,
    token: str,
    body: str,
    clients: int,
    seconds: int,
    *,
    close: bool = False,
    quiet: bool = False,
) -> int:
    run = secrets.token_hex(3)
    script = (
        LUA.replace("TOKEN", token)
        .replace("BODY_FILE", str(OUT / f"{body}.json"))
        .replace("PATH", PATH)
        .replace("RUN", run)
        .replace("CLOSE", ', ["Connection"] = "close"' if close else "")
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    out = sh(
        "wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{seconds}s", "--latency",
        "-s", lua.name, url, capture=True,
    )  # fmt: skip
    os.unlink(lua.name)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    if quiet:
        return requests
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors and not close:
        errors += sum(int(g) for g in socket_errors.groups())
    rows = 100 if body == "hundred-rows" else 1
    label = f"{body}{' (close)' if close else ''}"
    print(
        f"{label:>12} {clients:>8} {rps:>9.0f} {rps * rows:>9.0f} {p50:>8.2f} {p99:>8.2f} "
        f"{errors:>7}"
    )
    return requests - errors


def _healthz(url: str, seconds: int) -> None:
    out = sh("wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", f"{url}/healthz", capture=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    print(f"{'/healthz':>12} {8:>8} {rps:>9.0f} {'':>9} {p50:>8.2f} {p99:>8.2f} {0:>7}")


def _recorded(url: str) -> int:
    with urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^modelgate_serving_log_rows_total ([\d.e+]+)$", text, re.M)
    return int(float(match.group(1))) if match else 0


def _wait_stored(env: dict[str, str], python: str, recorded: int) -> tuple[int, int, int]:
    deadline = time.monotonic() + 600
    stored = (0, 0, 0)
    while time.monotonic() < deadline:
        out = sh(python, "manage.py", "shell", "-v0", "-c", COUNT_STORED, env=env, capture=True)
        stored = tuple(int(x) for x in re.search(r"STORED (\d+) (\d+) (\d+)", out).groups())
        if stored[1] >= recorded:
            break
        time.sleep(5)
    return stored  # type: ignore[return-value]


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


if __name__ == "__main__":
    main()
