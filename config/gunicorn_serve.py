"""gunicorn settings of the serving process type:

    gunicorn -c config/gunicorn_serve.py config.wsgi

Threaded workers (``gthread``) keep client connections alive (sync workers
close each one, which every caller then pays for). Each worker process is one
serving process: it starts its routing poller, model loader and prediction-log
flusher after the fork, and on a clean stop (SIGTERM, or gunicorn recycling
it) hands off every logged prediction before it exits. Prometheus metrics are
shared between workers through files in PROMETHEUS_MULTIPROC_DIR, cleaned here
when the server starts.

Environment: SERVE_HOST (127.0.0.1), SERVE_PORT (8001), SERVE_WORKERS (2),
SERVE_THREADS (8), SERVE_TIMEOUT (30). Predictions are batched across the
concurrent requests of a process (lifecycle/serving.py), so more threads per
process make bigger batches (docs/serving.md: the benchmark, 1 x 16 on 2 shared
cores, batched best).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ["MODELGATE_PROCESS"] = "serve"
_var = Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var / "prometheus-serve"))

bind = f"{os.environ.get('SERVE_HOST', '127.0.0.1')}:{os.environ.get('SERVE_PORT', '8001')}"
workers = int(os.environ.get("SERVE_WORKERS", "2"))
threads = int(os.environ.get("SERVE_THREADS", "8"))
worker_class = "gthread"
keepalive = 30
timeout = int(os.environ.get("SERVE_TIMEOUT", "30"))
graceful_timeout = 30
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl),
# which the web process (or a second serving process on the machine) would take over;
# nothing here uses it.
control_socket_disable = True
# Model libraries spin their thread pools otherwise; one request is one core's work.
raw_env = ["OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1"]
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def on_starting(server):
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def post_worker_init(worker):
    from lifecycle.prediction_log import LOG
    from lifecycle.serving import STATE

    STATE.start()
    LOG.start()


def worker_exit(server, worker):
    # A clean stop: in-flight requests are done; hand off every logged row.
    from lifecycle.prediction_log import LOG
    from lifecycle.serving import STATE

    left = LOG.shutdown()
    STATE.stop()
    server.log.info("serving worker %s exiting; %s log rows left unsent", worker.pid, left)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
