# ModelGate: two commands on a fresh machine.
#   make run   set up, migrate, load the demo, start web + serve + worker + beat on
#              http://127.0.0.1:8000 (web) and http://127.0.0.1:8001/serve/ (predictions)
#   make test  set up, run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
SERVE_PORT ?= 8001
WEB_WORKERS ?= 3
SERVE_WORKERS ?= 2

.PHONY: run test venv venv-dev check lint bench clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

var/secret_key:
	mkdir -p var
	umask 077 && $(PY) -c "import secrets; print(secrets.token_urlsafe(64))" > $@

# Local development server: DEBUG on, a generated secret key kept in var/,
# SQLite + the filesystem broker unless DATABASE_URL / CELERY_BROKER_URL say otherwise.
run: $(VENV)/.runtime var/secret_key
	@export DEBUG=$${DEBUG:-1} SECRET_KEY=$$(cat var/secret_key); \
	$(PY) manage.py migrate --no-input -v0 && \
	$(PY) manage.py demo && \
	echo "Starting web (http://$(HOST):$(PORT)), serve (http://$(HOST):$(SERVE_PORT)/serve/<model>/<environment>/invocations), worker and beat. Ctrl-C stops all four." && \
	trap 'kill 0' INT TERM EXIT; \
	$(PY) -m celery -A config worker -Q quick,heavy --concurrency 2 -l info & \
	$(PY) -m celery -A config beat -l info --schedule var/celerybeat-schedule & \
	$(VENV)/bin/gunicorn config.wsgi -b $(HOST):$(PORT) -w $(WEB_WORKERS) --access-logfile - & \
	SERVE_HOST=$(HOST) SERVE_PORT=$(SERVE_PORT) SERVE_WORKERS=$(SERVE_WORKERS) \
	  $(VENV)/bin/gunicorn -c config/gunicorn_serve.py config.wsgi & \
	wait

test: $(VENV)/.dev
	DEBUG=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check common registry lifecycle demo config

check: $(VENV)/.dev
	DEBUG=1 $(PY) manage.py check
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

bench: $(VENV)/.dev
	@echo "See bench/README.md; each script prints its figures."

clean:
	rm -rf $(VENV) var staticfiles test-artifacts .pytest_cache
