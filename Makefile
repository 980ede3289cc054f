# ModelGate: three commands on a fresh machine.
#   make run   set up, migrate, load the demo, start web + serve + worker + beat on
#              http://$(HOST):$(PORT) (web) and http://$(HOST):$(SERVE_PORT)/serve/ (predictions);
#              Ctrl-C stops all four (config/run.py). DEMO=0 skips the demo data.
#   make loop  the lifecycle scenario, both rounds, against the real processes: traffic,
#              drift, alerts, retraining, review and sign-offs, canary promoted, a bad
#              candidate stopped by its replay; prints the timeline, verifies the audit chain and
#              the wall time (demo/loop.py, docs/loop.md). Its own VAR_DIR (var/loop),
#              fresh each time, on ports LOOP_PORT/LOOP_SERVE_PORT (8010/8011).
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
DEMO ?= 1

.PHONY: run loop test venv venv-dev check lint bench clean

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
# The runner (config/run.py) starts the four process types, prefixes their output and,
# on Ctrl-C or SIGTERM, stops each once, in order, within seconds.
run: $(VENV)/.runtime var/secret_key
	@export DEBUG=$${DEBUG:-1} SECRET_KEY=$$(cat var/secret_key) \
	  SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)} SERVE_URL=$${SERVE_URL:-http://$(HOST):$(SERVE_PORT)} \
	  SERVE_HOST=$(HOST) SERVE_PORT=$(SERVE_PORT); \
	$(PY) manage.py migrate --no-input -v0 && \
	{ [ "$(DEMO)" = 0 ] || $(PY) manage.py demo; } && \
	exec $(PY) -m config.run --host $(HOST) --port $(PORT) --serve-port $(SERVE_PORT) \
	  --web-workers $(WEB_WORKERS) --serve-workers $(SERVE_WORKERS)

# The loop: a fresh embedded state in var/loop (SQLite + filesystem broker) unless
# DATABASE_URL / CELERY_BROKER_URL say otherwise; shortened intervals (demo/loop.py's
# LOOP_ENVIRONMENT) unless set in the environment.
LOOP_VAR ?= var/loop
LOOP_PORT ?= 8010
LOOP_SERVE_PORT ?= 8011
loop: $(VENV)/.runtime var/secret_key
	rm -rf $(LOOP_VAR) && mkdir -p $(LOOP_VAR)
	@export DEBUG=$${DEBUG:-1} SECRET_KEY=$$(cat var/secret_key) VAR_DIR=$(abspath $(LOOP_VAR)) \
	  SITE_URL=http://$(HOST):$(LOOP_PORT) SERVE_URL=http://$(HOST):$(LOOP_SERVE_PORT); \
	$(PY) manage.py loop --host $(HOST) --port $(LOOP_PORT) --serve-port $(LOOP_SERVE_PORT) $(LOOP_ARGS)

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
