"""Alias resolution throughput and latency, served by gunicorn on PostgreSQL.

    .venv/bin/python bench/alias_resolve_bench.py [--seconds 10] [--workers 3]

What it does (prints figures; never a test):
1. creates the database ``modelgate_bench`` on the local PostgreSQL (dropping an
   old one), migrates it and seeds 100 models x 20 ready versions, each model
   with ``@production`` and ``@staging``; a pipeline account with the viewer role
   on every model and an API token;
2. starts gunicorn (DEBUG off, production settings) on 127.0.0.1:8077;
   Resolutions are cached in each worker process, keyed by the model's
   resolution generation read with the permission check (registry/cache.py);
3. drives ``GET /api/v1/models/{model}/aliases/{alias}`` with wrk (a C load
   generator, so the client costs little CPU) at 1, 8 and 32 concurrent
   connections, rotating over all 200 aliases, and prints requests/s with p50
   and p99 latency; then ``/healthz`` (Django's whole stack, no database) at 8
   connections, the ceiling of a request that goes through Django, for context.

Target: >= 1,500 requests/s at 8 clients on a 2-core machine. Client and
server share the two cores, so the figure includes wrk's own CPU.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "modelgate_bench"
PORT = 8077

SEED = r"""
import hashlib
from datetime import timedelta
from django.contrib.auth.models import Group, User
from django.db import transaction
from guardian.shortcuts import assign_perm
from knox.models import AuthToken
from registry.models import Alias, ModelVersion, RegisteredModel

owner = User.objects.create_user("bench-owner")
bot = User.objects.create_user("bench-bot")
team = Group.objects.create(name="bench-team")
bot.groups.add(team)
digest = hashlib.sha256(b"bench").hexdigest()
with transaction.atomic():
    models = RegisteredModel.objects.bulk_create(
        RegisteredModel(name=f"model-{i:03d}", task="classification", risk_tier="low",
                        owner=owner, created_by=owner, last_version_number=20)
        for i in range(100)
    )
    versions = ModelVersion.objects.bulk_create(
        ModelVersion(registered_model=m, number=n, status="ready", artifact_key=f"artifacts/sha256/{digest[:2]}/{digest[2:4]}/{digest}.skops",
                     artifact_sha256=digest, artifact_size=1234, created_by=bot,
                     signature={"inputs": [{"name": f"f{k}", "dtype": "float64"} for k in range(10)],
                                "output": {"kind": "label", "classes": [0, 1]}},
                     metrics={"auc": 0.8}, hyperparameters={"C": 1.0})
        for m in models for n in range(1, 21)
    )
    by_model = {}
    for v in versions:
        by_model.setdefault(v.registered_model_id, []).append(v)
    Alias.objects.bulk_create(
        Alias(registered_model_id=mid, name=name, version=vs[idx], protected=(name == "production"),
              updated_by=owner)
        for mid, vs in by_model.items() for name, idx in (("production", 18), ("staging", 19))
    )
    for m in models:
        assign_perm("view_registeredmodel", team, m)
_, token = AuthToken.objects.create(user=bot, expiry=timedelta(days=1))
print("TOKEN=" + token)
"""

LUA = r"""
local paths = {}
for i = 0, 99 do
  paths[#paths + 1] = string.format("/api/v1/models/model-%03d/aliases/production", i)
  paths[#paths + 1] = string.format("/api/v1/models/model-%03d/aliases/staging", i)
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1], {["Authorization"] = "Token TOKEN", ["Host"] = "127.0.0.1"})
end
"""


def sh(*args: str, env: dict[str, str] | None = None, capture: bool = False) -> str:
    result = subprocess.run(args, env=env, cwd=ROOT, check=True, text=True, capture_output=capture)
    return result.stdout if capture else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 3)))
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")

    python = sys.executable
    sh("psql", f"{PG}/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}")
    sh("psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {DB_NAME}")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{PG}/{DB_NAME}",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SECURE_COOKIES="0",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
    )
    sh(python, "manage.py", "migrate", "-v0", env=env)
    sh(python, "manage.py", "collectstatic", "--no-input", "-v0", env=env)
    token = re.search(
        r"TOKEN=(\S+)", sh(python, "manage.py", "shell", "-v0", "-c", SEED, env=env, capture=True)
    ).group(1)

    gunicorn = _start_gunicorn(args, env, PORT, token)
    url = f"http://127.0.0.1:{PORT}"
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(LUA.replace("TOKEN", token))
        print(
            f"alias resolution: gunicorn {args.workers} workers x {args.threads} threads, "
            f"PostgreSQL, 100 models x 20 versions, "
            f"{os.cpu_count()} CPUs, {args.seconds}s per run, load average {os.getloadavg()}"
        )
        print(f"{'path':>9} {'clients':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        sh("wrk", "-t1", "-c8", "-d3s", "-s", lua.name, url, capture=True)  # warm-up
        for clients in (1, 8, 32):
            _run_wrk("alias", clients, args.seconds, url, "-s", lua.name)
        # Django's whole stack without a database: how fast the machine is right now.
        _run_wrk("/healthz", 8, args.seconds, f"{url}/healthz")
        os.unlink(lua.name)
    finally:
        gunicorn.terminate()
        gunicorn.wait()


def _start_gunicorn(
    args: argparse.Namespace, env: dict[str, str], port: int, token: str
) -> subprocess.Popen:
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            req = Request(
                f"http://127.0.0.1:{port}/api/v1/models/model-000/aliases/production",
                headers={"Authorization": f"Token {token}"},
            )
            with urlopen(req, timeout=2) as response:
                assert response.status == 200
            break
        except Exception:
            time.sleep(0.2)
    return gunicorn


def _run_wrk(label: str, clients: int, seconds: int, url: str, *script: str) -> None:
    out = sh(
        "wrk",
        f"-t{min(clients, 2)}",
        f"-c{clients}",
        f"-d{seconds}s",
        "--latency",
        *script,
        url,
        capture=True,
    )
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = errors.group(1) if errors else 0
    print(f"{label:>9} {clients:>8} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {errs:>7}")


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


if __name__ == "__main__":
    main()
