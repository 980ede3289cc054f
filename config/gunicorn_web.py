"""gunicorn settings of the web process type (pages, the REST API, the admin):

    gunicorn -c config/gunicorn_web.py config.wsgi

Prometheus metrics (common/telemetry.py) are shared between the workers through
files in PROMETHEUS_MULTIPROC_DIR ($VAR_DIR/prometheus-web unless given), which
must be set before prometheus-client is first imported (hence here, in the
master, before the application loads) and is cleaned when the server starts; a
dead worker's files are marked so its gauges drop out while its counts stay.

Environment: WEB_HOST (127.0.0.1), WEB_PORT (8000), WEB_WORKERS (3),
WEB_TIMEOUT (120). One directory per server: two gunicorn servers on one host
must not share PROMETHEUS_MULTIPROC_DIR (each cleans it when it starts).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_var = Path(os.environ.get("VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var / "prometheus-web"))

bind = f"{os.environ.get('WEB_HOST', '127.0.0.1')}:{os.environ.get('WEB_PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "3"))
timeout = int(os.environ.get("WEB_TIMEOUT", "120"))
graceful_timeout = 30
# One control socket per user by default ($HOME/.gunicorn/gunicorn.ctl), which the
# serving process on the same machine would take over; nothing here uses it.
control_socket_disable = True


def on_starting(server):
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
