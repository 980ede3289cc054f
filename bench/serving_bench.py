"""Prediction serving throughput and latency: ModelGate's serving process under wrk.

    .venv/bin/python bench/serving_bench.py [--seconds 10] [--workers 1] [--threads 16]

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
4. side by side in the same run, ``mlflow models serve --env-manager local``
   (MLflow from ``bench/.venv-compare``: ``bash bench/setup_compare_env.sh``;
   never in the project's requirements) on the same fitted pipeline, v1's
   artifact saved with ``mlflow.sklearn.save_model`` (skops format) by the
   compare environment's Python, with as many uvicorn workers as ModelGate has
   gunicorn workers, on 127.0.0.1:8079: every wrk case runs against ModelGate
   and then against MLflow with the same body, one after the other, and the
   table gives MLflow's figures and the ratio next to ModelGate's. MLflow
   answers ``predict`` only, with no auth, routing or logging; ModelGate also
   computes the probability it logs;
5. waits for the prediction log to drain and compares the rows the serving
   processes recorded (their ``/metrics``) with the rows stored in monitoring's
   prediction batches and the serving log: no lost prediction log.

``--no-mlflow`` skips step 4. The model's files are left in
``bench/.serving-bench/`` (the two skops artifacts, the MLflow model, a one-row
and a hundred-row body).

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
from urllib.parse import urlparse
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / ".serving-bench"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "modelgate_serving_bench"
PORT = 8078
MLFLOW_PORT = 8079
PATH = "/serve/credit-default/production/invocations"
COMPARE = Path(__file__).resolve().parent / ".venv-compare" / "bin"

# Runs in bench/.venv-compare: v1's skops artifact (made in this run) as an MLflow model.
EXPORT = r"""
import shutil, sys
import mlflow.sklearn, skops.io as sio
source, target = sys.argv[1], sys.argv[2]
trusted = sio.get_untrusted_types(file=source)  # the artifact this run just wrote
model = sio.load(source, trusted=trusted)
shutil.rmtree(target, ignore_errors=True)
mlflow.sklearn.save_model(model, target, serialization_format="skops", skops_trusted_types=trusted)
print("exported", type(model).__name__, "to", target)
"""

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
    # Many threads per process make big batches; on 2 cores shared with wrk, PostgreSQL and
    # the worker, one process batches best (docs/serving.md has 1, 2 and 3 workers).
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 1)))
    parser.add_argument("--threads", type=int, default=16, help="gthread threads per worker")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--keep", action="store_true", help="keep VAR_DIR (to profile after)")
    parser.add_argument("--no-mlflow", dest="mlflow", action="store_false",
                        help="skip the side-by-side mlflow models serve")  # fmt: skip
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    python = sys.executable
    OUT.mkdir(exist_ok=True)
    sh("psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}")
    sh("psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {DB_NAME}")
    var = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    env = production_env(f"{PG}/{DB_NAME}")
    env.update(
        VAR_DIR=str(var),
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

    mlflow_model = OUT / "mlflow-credit-v1"
    if args.mlflow:
        if not (COMPARE / "mlflow").exists():
            sys.exit(
                "MLflow is needed for the side-by-side run: bash bench/setup_compare_env.sh "
                "(or --no-mlflow)"
            )
        print(sh(str(COMPARE / "python"), "-c", EXPORT, str(OUT / "credit-v1.skops"),
                 str(mlflow_model), capture=True).strip())  # fmt: skip

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
    processes = [serve, worker]
    mlflow_url = f"http://127.0.0.1:{MLFLOW_PORT}"
    if args.mlflow:
        compare_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))
        }
        compare_env.update(
            PATH=f"{COMPARE}:{os.environ.get('PATH', '')}",
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            MLFLOW_TRACKING_URI=f"file://{var}/mlruns",
        )
        mlflow_serve = [
            str(COMPARE / "mlflow"), "models", "serve", "-m", str(mlflow_model),
            "--env-manager", "local", "-h", "127.0.0.1", "-p", str(MLFLOW_PORT),
            "-w", str(args.workers),
        ]  # fmt: skip
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        processes.append(
            subprocess.Popen(
                mlflow_serve, cwd=ROOT, env=compare_env, start_new_session=True, **quiet
            )
        )
    url = f"http://127.0.0.1:{PORT}"
    try:
        _wait_ready(url + PATH, token)
        if args.mlflow:
            _wait_ready(mlflow_url + "/invocations", None)
        print(
            f"ModelGate: gunicorn {args.workers} gthread workers x {args.threads} threads, "
            f"prediction logging on, PostgreSQL + Redis; "
            + (f"MLflow {_mlflow_version()}: `mlflow models serve --env-manager local -w "
               f"{args.workers}` (uvicorn); " if args.mlflow else "")
            + f"{os.cpu_count()} CPUs, {args.seconds}s per run, "
            f"load average {_load()} at the start"
        )  # fmt: skip
        header = f"{'body':>23} {'clients':>7} | {'req/s':>7} {'rows/s':>8} {'p50 ms':>7} "
        header += f"{'p99 ms':>7} {'errors':>6}"
        if args.mlflow:
            header += f" | {'mlflow req/s':>12} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | "
            header += f"{'ratio':>6}"
        print(
            f"{'':>31} | {'ModelGate':^40}"
            + (f" | {'mlflow models serve':^36} |" if args.mlflow else "")
        )
        print(header)
        posted = 0
        _wrk(url + PATH, token, "one-row", 8, 3)  # warm-up
        if args.mlflow:
            _wrk(mlflow_url + "/invocations", None, "one-row", 8, 3)
        cases = [
            (body, clients, False)
            for body in ("one-row", "hundred-rows")
            for clients in [int(c) for c in args.clients.split(",")]
        ] + [("one-row", 8, True)]
        for body, clients, close in cases:
            rows = 100 if body == "hundred-rows" else 1
            mine = _wrk(url + PATH, token, body, clients, args.seconds, close=close)
            posted += mine["answered"] * rows
            label = f"{body} {'close' if close else 'keep-alive'}"
            line = (
                f"{label:>23} {clients:>7} | {mine['rps']:>7.0f} {mine['rps'] * rows:>8.0f} "
                f"{mine['p50']:>7.2f} {mine['p99']:>7.2f} {mine['errors']:>6}"
            )
            if args.mlflow:
                theirs = _wrk(mlflow_url + "/invocations", None, body, clients, args.seconds,
                              close=close)  # fmt: skip
                line += (
                    f" | {theirs['rps']:>12.0f} {theirs['p50']:>7.2f} {theirs['p99']:>7.2f} "
                    f"{theirs['errors']:>6} | {mine['rps'] / max(theirs['rps'], 1e-9):>5.2f}x"
                )
            print(line, flush=True)
        health = _wrk(url + "/healthz", None, None, 8, args.seconds)
        print(
            f"{'/healthz (gauge)':>23} {8:>7} | {health['rps']:>7.0f} {'':>8} "
            f"{health['p50']:>7.2f} {health['p99']:>7.2f} {health['errors']:>6}"
        )
        print(f"load average {_load()} at the end")
        recorded = _recorded(url)
        print("waiting for the prediction log to drain ...")
        stored = _wait_stored(env, python, recorded)
        print(
            f"prediction log: rows answered per wrk {posted} (wrk does not count the requests "
            f"in flight when it stops); recorded by the serving processes {recorded}; stored in "
            f"monitoring's prediction batches {stored[0]} and in the serving log {stored[1]} "
            f"(of which {stored[2]} refused requests); "
            f"{'none lost' if stored[1] >= recorded else f'{recorded - stored[1]} LOST'}"
        )
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
        if args.keep:
            print(f"kept: database {DB_NAME}, VAR_DIR {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)


def production_env(database_url: str) -> dict[str, str]:
    """A bench's process environment: production mode (DEBUG off) on 127.0.0.1, a
    fresh secret key, the broker of ``BENCH_BROKER``; no protected aliases (a scratch
    database needs no approvals: governance acts on deployments, never per request)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        CELERY_BROKER_URL=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/13"),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
        ALWAYS_PROTECTED_ALIASES="",
        OMP_NUM_THREADS="1",
    )
    return env


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _mlflow_version() -> str:
    out = sh(str(COMPARE / "python"), "-c", "import mlflow; print(mlflow.__version__)",
             capture=True)  # fmt: skip
    return out.strip()


def _purge_broker(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "purge", "-f", "-Q", "quick,heavy"],
        cwd=ROOT, env=env, capture_output=True, check=False,
    )  # fmt: skip


def _wait_ready(url: str, token: str | None) -> None:
    body = (OUT / "one-row.json").read_bytes()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    for _ in range(600):
        try:
            with urlopen(Request(url, data=body, headers=headers), timeout=5) as response:
                if response.status == 200:
                    time.sleep(2)  # the other worker's loader finishes too
                    return
        except Exception:
            time.sleep(0.3)
    sys.exit(f"{url} did not answer")


def _wrk(
    url: str,
    token: str | None,
    body: str | None,
    clients: int,
    seconds: int,
    *,
    close: bool = False,
) -> dict[str, float]:
    """One wrk run: requests/s, p50, p99 (ms), errors and the requests answered."""
    args = ["wrk", f"-t{min(clients, 2)}", f"-c{clients}", f"-d{seconds}s", "--latency"]
    script = None
    if body is not None:
        lua = (
            LUA.replace("TOKEN", token or "")
            .replace("BODY_FILE", str(OUT / f"{body}.json"))
            .replace("PATH", urlparse(url).path)
            .replace("RUN", secrets.token_hex(3))
            .replace("CLOSE", ', ["Connection"] = "close"' if close else "")
        )
        if token is None:
            lua = lua.replace('["Authorization"] = "Token ", ', "")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(lua)
        args += ["-s", script.name]
    try:
        out = sh(*args, url, capture=True)
    finally:
        if script is not None:
            os.unlink(script.name)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        connect, read, write, timeout = (int(g) for g in socket_errors.groups())
        # With Connection: close, wrk counts the server's closing of each connection as a
        # read error; a refused connection, a write error or a timeout is an error still.
        errors += connect + write + timeout + (0 if close else read)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "errors": errors,
        "answered": requests - errors,
    }


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
