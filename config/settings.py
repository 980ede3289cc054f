"""ModelGate settings: every value comes from the environment.

With no environment at all this is the *embedded default*: SQLite and Celery's
filesystem transport under ``var/``, artifacts under ``var/artifacts``. Setting
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switches to PostgreSQL and Redis
with the same code paths. With ``DEBUG`` off the process refuses to start on an
insecure configuration (see ``_refuse_insecure_production``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")


def _refuse_insecure_production() -> None:
    """Without DEBUG, a missing or weak secret key or no allowed hosts is fatal."""
    if DEBUG:
        return
    problems = []
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
        problems.append("SECRET_KEY must be set to a random value of at least 50 characters")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must list the host names this server answers to")
    hash_key = env_str("MONITORING_HASH_KEY")
    if hash_key and (len(hash_key) < 32 or len(set(hash_key)) < 5):
        problems.append("MONITORING_HASH_KEY, when set, must be a random value of 32+ characters")
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off: " + "; ".join(problems) + ". "
            "Set DEBUG=1 for local development."
        )


_refuse_insecure_production()
if not SECRET_KEY:
    # DEBUG only: an ephemeral per-process key. `make run` exports a generated one
    # so that web, worker and beat agree.
    SECRET_KEY = get_random_secret_key()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "csp",
    "common",
    "registry",
    "governance",
    "monitoring",
    "lifecycle",
    "demo",  # the demo loader: imports every app, imported by none
]

MIDDLEWARE = [
    "common.middleware.ApiErrorShapeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "common.middleware.RequestIdMiddleware",
    "common.telemetry.RequestTelemetryMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Test-only fault injection (common/faults.py): honoured only with DEBUG on.
MODELGATE_FAULT = env_str("MODELGATE_FAULT") if DEBUG else ""
if MODELGATE_FAULT:
    MIDDLEWARE.insert(0, "common.faults.FaultInjectionMiddleware")

ROOT_URLCONF = "config.urls"
# The web site's URLs, which absolute links (e-mails) name whichever process builds them.
SITE_URLCONF = "config.urls"
if env_str("MODELGATE_PROCESS", "web") == "serve":
    # The serving process: /serve/, /healthz, /readyz and /metrics only, behind the few
    # middlewares a token-authenticated JSON endpoint needs (no sessions, CSRF,
    # messages or pages).
    ROOT_URLCONF = "config.serve_urls"
    MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
    # The admin and axes live on the web process; this one serves no page or login.
    SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410", "axes.W002"]
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'modelgate.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded default serves a web process and a worker at once: wait for
    # the write lock instead of failing, and take it at BEGIN so that a
    # read-then-write transaction cannot deadlock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not ":memory:", so that a Celery worker started by the tests can
    # open the test database too.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with the per-request health check skipped on a
    # connection used less than this many seconds ago (common/db/postgresql).
    DATABASES["default"]["ENGINE"] = "common.db.postgresql"
    DATABASES["default"]["HEALTH_CHECK_IDLE_SECONDS"] = env_float(
        "DB_HEALTH_CHECK_IDLE_SECONDS", 1.0
    )
    if env_bool("DB_PREPARED_STATEMENTS", True):
        # Server-side parameters let PostgreSQL prepare a statement once per
        # connection and skip planning on repeats: the permission-filtered
        # queries plan in ~5 ms but execute in ~1 ms. Turn off behind a
        # transaction-pooling PgBouncer, which cannot keep prepared statements.
        DATABASES["default"]["OPTIONS"] = {
            "server_side_binding": True,
            "prepare_threshold": 2,
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache ----------------------------------------------------------------
# Alias resolutions are cached in-process, keyed by a generation the database
# bumps on every relevant change (registry/cache.py), so nothing here needs a
# shared cache server.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- auth -------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # guardian: anonymous users hold no object permissions

AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.LimitedJSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# Idempotency-Key: how long a key and its answer are kept for replays (common/idempotency.py).
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env_int("API_TOKEN_TTL_HOURS", 10)),
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": None,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ModelGate API",
    "DESCRIPTION": "Governed model registry: models, versions, datasets, aliases.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status" field with different choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "common.models.JobStatus",
        "VersionStatusEnum": "registry.choices.VersionStatus",
        "ReviewStateEnum": "governance.choices.ReviewState",
        "SignOffRoleEnum": "governance.choices.SignOffRole",
        "DatasetRoleEnum": "registry.choices.DatasetRole",
        "TierLoweringRoleEnum": "governance.choices.TierLoweringRole",
        "DeploymentStrategyEnum": "lifecycle.models.deployments.Strategy",
        "RetrainingStrategyEnum": "lifecycle.models.retraining.RetrainingStrategy",
    },
}

# --- uploads ----------------------------------------------------------------
# Uploads are streamed to a temporary file in chunks; anything above
# MAX_UPLOAD_MB is refused by common.uploads.LimitedUploadHandler before it is
# read whole. JSON bodies have their own, smaller cap.
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_MB", 512) * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_HANDLERS = ["common.uploads.LimitedUploadHandler"]
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_JSON_MB", 10) * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
# Request JSON (bodies, the metadata field) nests at most this many arrays/objects.
MAX_JSON_DEPTH = env_int("MAX_JSON_DEPTH", 64)
# Uploads spool to files in this one directory (Django deletes each when its
# request ends). A process killed mid-request leaves its file behind: every web
# process deletes files older than UPLOAD_TMP_MAX_AGE_SECONDS (longer than any
# request may last) when it starts, and a beat sweep does so periodically.
FILE_UPLOAD_TEMP_DIR = env_str("UPLOAD_TMP_DIR", str(VAR_DIR / "tmp" / "uploads"))
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
UPLOAD_TMP_MAX_AGE_SECONDS = env_int("UPLOAD_TMP_MAX_AGE_SECONDS", 3600)
MAX_DATASET_COLUMNS = env_int("MAX_DATASET_COLUMNS", 2000)
MAX_METADATA_BYTES = 256 * 1024
# A monitor with drift_method "auto" reads its window's raw rows (exact KS) up to
# this many rows, and merges the per-batch summaries above it.
MONITOR_ROWS_METHOD_MAX_ROWS = env_int("MONITOR_ROWS_METHOD_MAX_ROWS", 1_000_000)
# Model artifacts (registry/artifacts.py, docs/artifacts.md): what a skops
# archive may hold, checked on its directory before anything is inflated, and
# the exact type names an operator adds to the allow-list (comma-separated).
ARTIFACT_MAX_MEMBERS = env_int("ARTIFACT_MAX_MEMBERS", 20_000)
ARTIFACT_MAX_UNCOMPRESSED_BYTES = (
    env_int("ARTIFACT_MAX_UNCOMPRESSED_MB", 2 * MAX_UPLOAD_BYTES // (1024 * 1024)) * 1024 * 1024
)
ARTIFACT_MAX_RATIO = env_int("ARTIFACT_MAX_RATIO", 100)
ARTIFACT_EXTRA_TYPES = env_list("ARTIFACT_EXTRA_TYPES")
# Prediction and label batches older than this (by when they were stored) are
# deleted by the daily retention sweep, unless a model's data policy says
# otherwise or an open review, an active alert or an unfinished check needs them.
MONITORING_RETENTION_DAYS = env_int("MONITORING_RETENTION_DAYS", 365)
# Key of the HMAC-SHA256 that replaces the columns a model's data policy hashes.
# Without it, hashing cannot be configured and batches of such models are refused.
# Changing it changes every hash: drift windows then restart from the new batches.
MONITORING_HASH_KEY = env_str("MONITORING_HASH_KEY")

# --- storage ----------------------------------------------------------------
# Stored bytes (docs/storage.md): one storage per kind of blob, each a local
# folder (the embedded default) or an S3-compatible bucket (production; any
# endpoint: AWS, MinIO, Ceph...). BLOB_STORAGE picks the backend of every kind,
# BLOB_STORAGE_<KIND> overrides it for one kind, S3_BUCKET_<KIND> its bucket.
ARTIFACT_ROOT = Path(env_str("ARTIFACT_ROOT", str(VAR_DIR / "artifacts")))
BLOB_KINDS = ("artifacts", "datasets", "batches", "profiles")
BLOB_STORAGE = env_str("BLOB_STORAGE", "local")
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL") or None
S3_REGION = env_str("S3_REGION", "us-east-1")
S3_BUCKET = env_str("S3_BUCKET")
# Uploads go in parts of this size (S3's minimum is 5 MB), this many at a time:
# an upload holds at most about chunk x concurrency bytes in memory.
S3_MULTIPART_CHUNK_BYTES = env_int("S3_MULTIPART_CHUNK_MB", 8) * 1024 * 1024
S3_MAX_CONCURRENCY = env_int("S3_MAX_CONCURRENCY", 4)
# Objects read back spill to a temporary file above this size.
S3_MAX_MEMORY_BYTES = env_int("S3_MAX_MEMORY_MB", 8) * 1024 * 1024
# The local cache of stored objects that code reading a file (pyarrow, skops)
# uses: bounded, least recently used evicted first, each copy checked by SHA-256.
BLOB_CACHE_DIR = env_str("BLOB_CACHE_DIR", str(VAR_DIR / "cache" / "blobs"))
BLOB_CACHE_MAX_BYTES = env_int("BLOB_CACHE_MAX_MB", 2048) * 1024 * 1024


def blob_storage_config(kind: str) -> dict[str, Any]:
    backend = env_str(f"BLOB_STORAGE_{kind.upper()}", BLOB_STORAGE)
    if backend == "local":
        # Keys start with their kind, so the kinds can share one folder.
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(ARTIFACT_ROOT)},
        }
    if backend != "s3":
        raise ImproperlyConfigured(f"BLOB_STORAGE must be 'local' or 's3', not {backend!r}")
    bucket = env_str(f"S3_BUCKET_{kind.upper()}", S3_BUCKET)
    if not bucket:
        raise ImproperlyConfigured(f"S3_BUCKET (or S3_BUCKET_{kind.upper()}) is required")
    return s3_storage_config(bucket)


def s3_storage_config(bucket: str, endpoint_url: str | None = None) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(
        multipart_threshold=S3_MULTIPART_CHUNK_BYTES,
        multipart_chunksize=S3_MULTIPART_CHUNK_BYTES,
        max_concurrency=S3_MAX_CONCURRENCY,
    )
    # Parts read ahead of their upload: at most as many as upload at once.
    transfer.max_in_memory_upload_chunks = S3_MAX_CONCURRENCY
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or S3_ENDPOINT_URL,
            "region_name": S3_REGION,
            # Credentials: S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY, else boto3's
            # own chain (AWS_* variables, instance roles...).
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "file_overwrite": False,  # content-addressed: never replace an object
            "default_acl": None,
            "querystring_auth": False,
            "max_memory_size": S3_MAX_MEMORY_BYTES,
            "transfer_config": transfer,
        },
    }


STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    # Content-addressed blobs (common/storage.py). Keys are derived from
    # digests, never from user input.
    **{kind: blob_storage_config(kind) for kind in BLOB_KINDS},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        ),
    },
}
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "common.staticfinders.PlotlyFinder",  # plotly's bundled JS, no CDN
]

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_SOFT_TIME_LIMIT", 55 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TIME_LIMIT", 60 * 60)
# Redis redelivers a message left unacknowledged this long (late acks keep a running
# task's message unacknowledged until it ends): it must exceed the hard time limit,
# or a task still running is delivered to a second worker.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3 * 3600)
if CELERY_VISIBILITY_TIMEOUT <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({CELERY_VISIBILITY_TIMEOUT} s) must exceed "
        f"CELERY_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT} s): a running task would be "
        "delivered to a second worker."
    )
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = Path(env_str("CELERY_FS_DIR", str(VAR_DIR / "celery")))
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    # kombu's filesystem transport, writing each message atomically (common/broker.py).
    CELERY_BROKER_TRANSPORT = "common.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_DEFAULT_QUEUE = "quick"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Background jobs (docs/jobs.md). While a job runs, a thread of its worker
# refreshes its heartbeat every JOB_HEARTBEAT_SECONDS; beat runs the sweep as
# often. A running job whose heartbeat is older than JOB_STALE_AFTER_SECONDS is
# taken for lost (its worker died) and requeued; a queued job due for longer
# than JOB_RESEND_AFTER_SECONDS has its id sent again (the message may never
# have reached the broker). The stale limit must leave room for missed beats.
JOB_HEARTBEAT_SECONDS = env_float("JOB_HEARTBEAT_SECONDS", 15)
JOB_STALE_AFTER_SECONDS = env_float("JOB_STALE_AFTER_SECONDS", 60)
JOB_RESEND_AFTER_SECONDS = env_float("JOB_RESEND_AFTER_SECONDS", 30)
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
if not 0 < 3 * JOB_HEARTBEAT_SECONDS <= JOB_STALE_AFTER_SECONDS:
    raise ImproperlyConfigured(
        "JOB_STALE_AFTER_SECONDS must be at least three JOB_HEARTBEAT_SECONDS, or a "
        "healthy job that misses a beat or two is requeued while it runs."
    )

# --- governance ---------------------------------------------------------------
# Aliases that are protected whatever their flag says: only an approved,
# unexpired version may be pointed at them, by a user with deploy rights.
ALWAYS_PROTECTED_ALIASES = env_list("ALWAYS_PROTECTED_ALIASES", "production")
# Group names that give the validator / compliance sign-off roles (together
# with the "approve" right on the model). The owner role is the model owner or
# anyone with the "manage" right on the model.
GOVERNANCE_VALIDATOR_GROUP = env_str("GOVERNANCE_VALIDATOR_GROUP", "model-validation")
GOVERNANCE_COMPLIANCE_GROUP = env_str("GOVERNANCE_COMPLIANCE_GROUP", "compliance")
# Group whose members (with "approve" on the model) hold the risk role: a policy may
# name it instead of compliance to approve lowering a model's risk tier.
GOVERNANCE_RISK_GROUP = env_str("GOVERNANCE_RISK_GROUP", "risk")
# Owners and teams are told this many days before an approval expires (and when it has).
GOVERNANCE_EXPIRY_WARNING_DAYS = env_int("GOVERNANCE_EXPIRY_WARNING_DAYS", 30)
# Risk tiers whose sign-offs may be given through the REST API (with the
# password); by default sign-offs are UI-only.
GOVERNANCE_API_SIGNOFF_TIERS = env_list("GOVERNANCE_API_SIGNOFF_TIERS", "")
# Webhook targets on loopback, link-local or private addresses are refused
# unless this is set (a test or an internal deployment).
WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)

# --- serving -----------------------------------------------------------------
# The serving process type (`gunicorn -c config/gunicorn_serve.py config.wsgi`)
# sets MODELGATE_PROCESS=serve: it answers only /serve/, /healthz, /readyz and /metrics.
PROCESS_TYPE = env_str("MODELGATE_PROCESS", "web")
SERVE_PORT = env_int("SERVE_PORT", 8001)
# Where callers reach the serving process (printed by the demo).
SERVE_URL = env_str(
    "SERVE_URL", f"http://{env_str('SERVE_HOST', '127.0.0.1')}:{SERVE_PORT}"
).rstrip("/")
# Bodies above this are refused (413) before they are read or parsed.
SERVE_MAX_BODY_BYTES = env_int("SERVE_MAX_BODY_KB", 5 * 1024) * 1024
SERVE_MAX_ROWS = env_int("SERVE_MAX_ROWS", 10_000)
# How often each serving process re-reads the routing state and reports itself
# (a routing change reaches every process within this plus one query).
SERVE_POLL_SECONDS = env_float("SERVE_POLL_SECONDS", 0.5)
# A serving process not seen for this long is taken for gone (deployments stop waiting for it).
SERVE_PROCESS_STALE_SECONDS = env_float("SERVE_PROCESS_STALE_SECONDS", 5.0)
# A direct deployment fails when a live process has not warmed the version by then.
SERVE_WARM_TIMEOUT_SECONDS = env_float("SERVE_WARM_TIMEOUT_SECONDS", 60.0)
# A token's user and serve rights are re-read at most this often per process
# (0: on every request, one statement). Revoking a token or a grant takes
# effect in the serving processes within this many seconds.
SERVE_AUTH_TTL_SECONDS = env_float("SERVE_AUTH_TTL_SECONDS", 5.0)
# Prediction logging: rows are handed to the broker at least this often, or
# when a process holds this many; a SIGKILL loses at most one interval.
SERVE_LOG_FLUSH_SECONDS = env_float("SERVE_LOG_FLUSH_SECONDS", 1.0)
SERVE_LOG_FLUSH_ROWS = env_int("SERVE_LOG_FLUSH_ROWS", 5_000)
# Rows kept in a process while the broker is unreachable; beyond, the oldest are dropped (counted).
SERVE_LOG_MAX_BUFFERED_ROWS = env_int("SERVE_LOG_MAX_BUFFERED_ROWS", 200_000)
SERVE_LOG_ENABLED = env_bool("SERVE_LOG_ENABLED", True)
# Blue/green: how long the previous stable version stays loaded after a switch.
SERVE_KEEP_PREVIOUS_SECONDS = env_float("SERVE_KEEP_PREVIOUS_SECONDS", 600.0)
SERVE_SHADOW_MAX_PENDING = env_int("SERVE_SHADOW_MAX_PENDING", 64)

# Rollouts (docs/rollouts.md): the controller's sweep, each canary step's
# default hold, the analysis thresholds (a deployment's own override them).
ROLLOUT_SWEEP_SECONDS = env_float("ROLLOUT_SWEEP_SECONDS", 10.0)
# Beat intervals that are a minute (or five) by default; 0 keeps the crontab. `make loop`
# shortens them so that its scenario runs in minutes (docs/loop.md).
MONITOR_CLAIM_SECONDS = env_int("MONITOR_CLAIM_SECONDS", 0)
RETRAINING_SWEEP_SECONDS = env_int("RETRAINING_SWEEP_SECONDS", 0)
ROLLOUT_STEP_SECONDS = env_float("ROLLOUT_STEP_SECONDS", 300.0)
ROLLOUT_SHADOW_SECONDS = env_float("ROLLOUT_SHADOW_SECONDS", 3600.0)
ROLLOUT_AB_SECONDS = env_float("ROLLOUT_AB_SECONDS", 86400.0)  # an A/B experiment's default
ROLLOUT_INCONCLUSIVE_LIMIT = env_int("ROLLOUT_INCONCLUSIVE_LIMIT", 3)
ROLLOUT_REPLAY_ROWS = env_int("ROLLOUT_REPLAY_ROWS", 500)
ROLLOUT_FREEZE_AFTER = env_int("ROLLOUT_FREEZE_AFTER", 3)
ROLLOUT_THRESHOLDS: dict[str, float] = {}  # name -> number, over rollout_analysis's defaults
# PROMETHEUS_MULTIPROC_DIR (read by prometheus-client itself) is set by
# config/gunicorn_serve.py to $VAR_DIR/prometheus-serve and by
# config/gunicorn_web.py to $VAR_DIR/prometheus-web unless given.

# --- email ------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "modelgate@localhost")
# Where people reach the web UI: e-mails (sign-offs, expiry, alerts) and printed
# messages carry absolute links built on it (common.links.absolute_url).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- security ---------------------------------------------------------------
_secure = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _secure)
# Probes and the scraper talk plain HTTP to the process itself (docs/deployment.md).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", _secure)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", _secure)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if _secure else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_HOURS", 8) * 3600
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
X_FRAME_OPTIONS = "DENY"

# Everything is served from this origin: htmx, plotly and Swagger UI are static
# files, so the policy allows no third-party origin at all.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- the operator's view (common/telemetry.py, docs/deployment.md) -------------
# /metrics answers a request bearing this token ("Authorization: Bearer ...");
# without one, only direct (not proxied) requests from these addresses.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_IPS = frozenset(env_list("METRICS_ALLOWED_IPS", "127.0.0.1,::1"))
# /readyz gives the broker this long to answer.
READYZ_TIMEOUT_SECONDS = env_float("READYZ_TIMEOUT_SECONDS", 2.0)
# LOG_FORMAT=json: one JSON object per line (request lines carry method, path,
# status, duration, user and the request id the audit trail records); the
# default stays readable text.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "common.telemetry.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
