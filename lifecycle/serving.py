"""The serving process: ``POST /serve/{model}/{environment}/invocations``.

Hot path, per request, in steady state: no SQL at all.

- **Routing** comes from a per-process copy of every environment's state
  (stable, candidate, share, generation), re-read in one statement by a
  poller thread every SERVE_POLL_SECONDS (0.5 s): a deployment or a rollback
  reaches every serving process on every machine within a second, with no
  restart and no message bus. A request never waits for the poller; an
  environment missing from the copy (just created) is read on demand.
- **Auth**: the API token (knox digest) and the serve right on the model are
  read together in one statement and kept per process for
  SERVE_AUTH_TTL_SECONDS (5 s; 0 re-reads on every request). That is the
  consistency chosen: a revoked token or grant stops serving within those
  seconds in every process, as a short-lived signed token would; an
  unauthenticated call is 401, a token without the serve right 404. Routing,
  by contrast, is never served from a stale copy after a switch has been
  seen, and the switch is visible within a second.
- **Models** are loaded once per process through the registry's safe skops
  loader (``registry.artifacts.load_estimator``), warmed with a prediction on
  the signature's example row, and cached. The poller hands every routable
  version (stable, candidate, and the target of a deployment in progress) to
  a loader thread, so a switch finds it warm; a request for a version not yet
  loaded loads it itself (one loader per version, others wait).

Each process reports itself (``ServingProcess``: what it has warmed, what it
failed to load) on every poll; a direct deployment switches once every live
process has warmed its version.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hmac import compare_digest
from typing import Any

import numpy as np
import sklearn
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, close_old_connections, connections, router
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS

from common.permissions import grant_condition_params, grant_condition_sql
from common.storage import cached_blob_path
from lifecycle import metrics, pipeline_plan, prediction_log, scoring
from registry.models import RegisteredModel

logger = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Final estimators whose ``predict`` is the class of highest ``predict_proba``
# (checked in scikit-learn's source): one call gives both, halving the cost of
# logging the probability. Others get both calls.
_PROBA_ARGMAX = frozenset(
    {
        "LogisticRegression",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "HistGradientBoostingClassifier",
    }
)
_NAN_PROBE_MAX_COLUMNS = 50
MAX_BATCH_ROWS = 2_000


class Refused(Exception):
    """A request refused before or after routing; the one error shape."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def error_response(
    status: int, code: str, message: str, details: dict | None = None
) -> HttpResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


# --- models -----------------------------------------------------------------------------


class _Pending:
    """One request's rows waiting for a batched prediction."""

    __slots__ = ("arrays", "done", "error", "lead", "predictions", "proba", "rows")

    def __init__(self, arrays: dict[str, np.ndarray], rows: int) -> None:
        self.arrays, self.rows = arrays, rows
        self.done = threading.Event()
        self.lead = False
        self.predictions: list[Any] = []
        self.proba: Any = None
        self.error: BaseException | None = None


@dataclass
class LoadedModel:
    """A loaded, warmed version; predictions are batched across concurrent requests.

    A scikit-learn pipeline costs about the same for one row as for a few dozen
    (its cost is per call: column selection, validation, pandas), so the
    requests that arrive while a prediction runs are answered by the next one,
    together: the first waiting request leads (builds one frame, predicts,
    hands each request its rows), the others wait for their share. A lone
    request leads at once, so batching never adds latency. When a batch fails,
    its requests are predicted one by one, so one bad input fails only itself.
    """

    version_id: int
    number: int
    model_name: str
    task: str
    estimator: Any
    specs: list[scoring.ColumnSpec]
    classes: list[Any] | None
    positive: int | None  # index of the positive class in predict_proba (binary only)
    proba_argmax: bool
    example: Any
    plan: pipeline_plan.ColumnPlan | None = None
    loaded_at: float = field(default_factory=time.monotonic)
    used_at: float = field(default_factory=time.monotonic)
    _queue: list[_Pending] = field(default_factory=list, repr=False)
    _queue_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _leading: bool = field(default=False, repr=False)
    _classes: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.classes is not None:
            self._classes = np.asarray(self.classes, dtype=object)

    def predict(self, arrays: dict[str, np.ndarray]) -> tuple[list[Any], Any]:
        """(predictions, probabilities or None) for validated columns, unbatched.

        Through the version's column plan where it has one (no DataFrame), else the
        pipeline on a frame. Inputs are validated already (types, and missing values
        only where the model accepts them), so scikit-learn's own finiteness and
        parameter checks are skipped for the call (a thread-local setting).
        """
        if self.plan is not None:
            source, call = arrays, self.plan
        else:
            source, call = scoring.to_frame(arrays), self.estimator
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if self.task == "classification" and hasattr(self.estimator, "predict_proba"):
                proba = call.predict_proba(source)
                if self.proba_argmax and self.classes is not None:
                    predicted = self._classes[np.argmax(proba, axis=1)]
                else:
                    predicted = call.predict(source)
                return scoring.plain(predicted), proba
            return scoring.plain(call.predict(source)), None

    def predict_rows(self, arrays: dict[str, np.ndarray], rows: int) -> tuple[list[Any], Any]:
        """Predict one request's validated columns, batched with concurrent requests."""
        item = _Pending(arrays, rows)
        with self._queue_lock:
            self._queue.append(item)
            if not self._leading:
                self._leading = item.lead = True
        if not item.lead:
            item.done.wait()
            if not item.lead:  # answered by another request's batch
                return self._result(item)
            item.done.clear()  # promoted: the previous leader woke us to lead
        while not item.done.is_set():
            with self._queue_lock:
                batch, taken = [], 0
                while self._queue and (not batch or taken + self._queue[0].rows <= MAX_BATCH_ROWS):
                    batch.append(self._queue.pop(0))
                    taken += batch[-1].rows
            self._run(batch)
        with self._queue_lock:
            if self._queue:  # hand the lead to the oldest waiting request
                self._queue[0].lead = True
                self._queue[0].done.set()
            else:
                self._leading = False
        return self._result(item)

    @staticmethod
    def _result(item: _Pending) -> tuple[list[Any], Any]:
        if item.error is not None:
            raise item.error
        return item.predictions, item.proba

    def _run(self, batch: list[_Pending]) -> None:
        try:
            if len(batch) == 1:
                arrays = batch[0].arrays
            else:
                arrays = {
                    name: np.concatenate([item.arrays[name] for item in batch])
                    for name in batch[0].arrays
                }
            predictions, proba = self.predict(arrays)
        except Exception as exc:
            if len(batch) > 1:
                for item in batch:  # one by one: a bad input fails only its own request
                    self._run([item])
                return
            batch[0].error = exc
            batch[0].lead = False
            batch[0].done.set()
            return
        start = 0
        for item in batch:
            end = start + item.rows
            item.predictions = predictions[start:end]
            item.proba = proba[start:end] if proba is not None else None
            item.lead = False
            item.done.set()
            start = end


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _sample_rows(version: Any, specs: list[scoring.ColumnSpec], rows: int = 1) -> Any:
    """The training data's first ``rows`` rows (the signature's inputs), else one row of
    typed zeros; its first row is the signature's example."""
    names = [s.name for s in specs]
    if version.training_dataset_id:
        from registry.tables import read_head

        try:
            with cached_blob_path(version.training_dataset.storage_key) as path:
                head = read_head(path, rows, columns=names)
            if len(head) >= 1:
                return head[names].reset_index(drop=True)
        except Exception:  # fall back to synthesised values
            logger.warning("no example row from the training data of %s", version, exc_info=True)
    zero = {"float": 0.0, "int": 0, "bool": False, "str": ""}
    return scoring.to_frame(
        {s.name: scoring.to_array([zero[s.kind]], s) for s in specs}  # type: ignore[arg-type]
    )


_PLAN_CHECK_ROWS = 200


def _as_request(frame: Any, specs: list[scoring.ColumnSpec]) -> dict[str, np.ndarray] | None:
    """``frame``'s rows as a request's validated columns (None: they would be refused)."""
    for rows in (frame, frame.dropna()):
        if len(rows) == 0:
            continue
        columns = {s.name: rows[s.name].tolist() for s in specs}
        try:
            return scoring.validate(scoring.Parsed(columns, len(rows), {}), specs)
        except scoring.ScoringError:
            continue
    return None


def _checked_plan(
    estimator: Any, specs: list[scoring.ColumnSpec], sample: Any
) -> pipeline_plan.ColumnPlan | None:
    """The version's column plan, if it answers exactly as the pipeline on a frame: on
    the sample rows, and on their first row with every text input set to a value the
    model never saw (both refuse it, or both answer the same)."""
    plan = pipeline_plan.column_plan(estimator, [s.name for s in specs])
    if plan is None:
        return None
    arrays = _as_request(sample, specs)
    if arrays is None:
        return None
    never_seen = np.array(["\x00never seen"], dtype=object)
    unseen = {s.name: never_seen if s.kind == "str" else arrays[s.name][:1] for s in specs}
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for rows in (arrays, unseen):
            if not pipeline_plan.same_answers(plan, estimator, rows, scoring.to_frame(rows)):
                logger.info("serving: no column plan for %s (answers differ)", estimator)
                return None
    return plan


def _probe_nan(estimator: Any, example: Any, specs: list[scoring.ColumnSpec]) -> frozenset[str]:
    """Float inputs where the model accepts a missing value (NaN): asked of the model."""
    floats = [s.name for s in specs if s.kind == "float"]
    if not floats:
        return frozenset()
    names = floats if len(floats) <= _NAN_PROBE_MAX_COLUMNS else [None]
    accepted = set()
    for name in names:
        probe = example.copy()
        for column in floats if name is None else [name]:
            probe[column] = np.nan
        try:
            estimator.predict(probe)
        except Exception:  # noqa: S112 - a refusal is the answer we are asking for
            continue
        accepted |= set(floats) if name is None else {name}
    return frozenset(accepted)


def load_version(version_id: int) -> LoadedModel:
    """Load, check and warm one version (the registry's safe loader; never unpickled)."""
    from registry.artifacts import load_estimator
    from registry.models import ModelVersion

    version = ModelVersion.objects.select_related("registered_model", "training_dataset").get(
        pk=version_id
    )
    with cached_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    base_specs = scoring.column_specs(version.signature.get("inputs", []))
    sample = _sample_rows(version, base_specs, _PLAN_CHECK_ROWS)
    example = sample.head(1)
    estimator.predict(example)  # the warm-up: raises if the model cannot answer
    specs = scoring.column_specs(
        version.signature.get("inputs", []), _probe_nan(estimator, example, base_specs)
    )
    task = version.registered_model.task
    classes = getattr(estimator, "classes_", None)
    classes = scoring.plain(classes) if classes is not None else None
    positive = 1 if task == "classification" and classes is not None and len(classes) == 2 else None
    if not hasattr(estimator, "predict_proba"):
        positive = None
    return LoadedModel(
        version_id=version.pk,
        number=version.number,
        model_name=version.registered_model.name,
        task=task,
        estimator=estimator,
        specs=specs,
        classes=classes,
        positive=positive,
        proba_argmax=type(_final_step(estimator)).__name__ in _PROBA_ARGMAX,
        example=example,
        plan=_checked_plan(estimator, specs, sample),
    )


class ModelCache:
    """Loaded versions of this process; one loader per version at a time."""

    def __init__(self, loader: Callable[[int], LoadedModel] = load_version) -> None:
        self._loader = loader
        self._models: dict[int, LoadedModel] = {}
        self._failed: dict[int, str] = {}
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, version_id: int) -> LoadedModel:
        model = self._models.get(version_id)
        if model is not None:
            model.used_at = time.monotonic()
            return model
        with self._guard:
            lock = self._locks.setdefault(version_id, threading.Lock())
        with lock:
            model = self._models.get(version_id)
            if model is None:
                try:
                    model = self._loader(version_id)
                except Exception as exc:
                    self._failed[version_id] = f"{type(exc).__name__}: {exc}"[:500]
                    raise
                self._failed.pop(version_id, None)
                self._models[version_id] = model
            return model

    def warmed(self) -> list[int]:
        return sorted(self._models)

    def failed(self) -> dict[str, str]:
        return {str(k): v for k, v in self._failed.items()}

    def has(self, version_id: int) -> bool:
        return version_id in self._models or version_id in self._failed

    def evict(self, keep: set[int], idle_seconds: float = 300.0) -> None:
        """Forget versions no environment routes to any more (after they idled a while)."""
        now = time.monotonic()
        for version_id, model in list(self._models.items()):
            if version_id not in keep and now - model.used_at > idle_seconds:
                self._models.pop(version_id, None)
        for version_id in list(self._failed):
            if version_id not in keep:
                self._failed.pop(version_id, None)

    def clear(self) -> None:
        self._models.clear()
        self._failed.clear()


# --- routing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    environment_id: int
    model_id: int
    model: str
    environment: str
    stable: int | None
    stable_number: int | None
    candidate: int | None
    candidate_number: int | None
    share: float
    target: int | None
    generation: int
    mode: str = "split"
    previous: int | None = None
    stable_since: Any = None

    def _chosen(self, request_id: str) -> bool:
        return self.candidate is not None and scoring.goes_to_candidate(
            request_id, str(self.environment_id), self.share
        )

    def pick(self, request_id: str) -> tuple[int | None, int | None]:
        """(version id, number) that answers ``request_id`` (never a shadow)."""
        if self.mode == "split" and self._chosen(request_id):  # never a shadow or preview
            return self.candidate, self.candidate_number
        return self.stable, self.stable_number

    def preview(self, number: int) -> tuple[int | None, int | None] | None:
        """(version id, number) for a caller who asked for version ``number``: the stable
        one, or a candidate being previewed or canaried; None: not served here."""
        if number == self.stable_number:
            return self.stable, self.stable_number
        if number == self.candidate_number and self.mode in ("preview", "split"):
            return self.candidate, self.candidate_number
        return None

    def shadow_of(self, request_id: str) -> int | None:
        """The shadow version that also scores ``request_id`` (None: no shadow for it)."""
        if self.mode == "shadow" and self._chosen(request_id):
            return self.candidate
        return None

    def keep_warm(self) -> set[int]:
        """Versions this process keeps loaded: what routes, what a deployment warms and,
        for SERVE_KEEP_PREVIOUS_SECONDS after a switch, the previous stable version
        (an instant switch-back: blue/green's)."""
        wanted = {self.stable, self.candidate, self.target} - {None}
        if self.previous is not None and self.stable_since is not None:
            since = self.stable_since
            if isinstance(since, str):
                since = datetime.fromisoformat(since)
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            if timezone.now() - since < timedelta(seconds=settings.SERVE_KEEP_PREVIOUS_SECONDS):
                wanted.add(self.previous)
        return wanted  # type: ignore[return-value]


_ROUTES_SQL = """
SELECT e.id, m.id, m.name, e.name, e.stable_version_id, sv.number, e.candidate_version_id,
       cv.number, e.candidate_share, e.target_version_id, e.generation, e.candidate_mode,
       e.previous_version_id, e.stable_since
FROM lifecycle_environment e
JOIN registry_registeredmodel m ON m.id = e.registered_model_id
LEFT JOIN registry_modelversion sv ON sv.id = e.stable_version_id
LEFT JOIN registry_modelversion cv ON cv.id = e.candidate_version_id
"""


class RoutingTable:
    """Every environment's routing state, as of the last read (one statement)."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}
        self.read_at = 0.0
        self._lock = threading.Lock()

    def refresh(self, where: str = "", params: tuple = ()) -> dict[tuple[str, str], Route]:
        with connections[router.db_for_read(RegisteredModel)].cursor() as cursor:
            cursor.execute(_ROUTES_SQL + where, params)
            rows = cursor.fetchall()
        routes = {
            (row[2], row[3]): Route(
                environment_id=row[0],
                model_id=row[1],
                model=row[2],
                environment=row[3],
                stable=row[4],
                stable_number=row[5],
                candidate=row[6],
                candidate_number=row[7],
                share=float(row[8] or 0.0),
                target=row[9],
                generation=row[10],
                mode=row[11] or "split",
                previous=row[12],
                stable_since=row[13],
            )
            for row in rows
        }
        return routes

    def reload(self) -> None:
        started = time.monotonic()
        routes = self.refresh()
        with self._lock:
            self._routes = routes  # one reference swap: readers see old or new, never half
            self.read_at = started

    def get(self, model: str, environment: str, *, max_age: float) -> Route | None:
        if time.monotonic() - self.read_at > max_age:
            self.reload()
        route = self._routes.get((model, environment))
        if route is None:
            # Not in the copy: maybe created since the last poll; read just it.
            fresh = self.refresh(" WHERE m.name = %s AND e.name = %s", (model, environment))
            route = fresh.get((model, environment))
            if route is not None:
                with self._lock:
                    self._routes = {**self._routes, (model, environment): route}
        return route

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def clear(self) -> None:
        with self._lock:
            self._routes = {}
            self.read_at = 0.0


# --- auth --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    user_id: int
    username: str
    may_serve: bool
    expiry: Any
    read_at: float
    may_deploy: bool = False  # may call a blue/green preview by its version


class AuthCache:
    """(token digest, model id) → the caller and whether they may serve it (TTL'd)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], Caller] = {}

    def clear(self) -> None:
        self._entries.clear()

    @staticmethod
    def _sql(alias: str) -> str:
        user = get_user_model()._meta.db_table
        grant = grant_condition_sql(RegisteredModel, "%s", user_sql="u.id")
        return (
            f"SELECT t.digest, t.expiry, u.id, u.username, u.is_active, u.is_superuser, {grant}, "  # noqa: S608
            f"{grant} "
            f"FROM {AuthToken._meta.db_table} t JOIN {user} u ON u.id = t.user_id "
            "WHERE t.token_key = %s"
        )

    def caller(self, token: str, model_id: int) -> Caller | None:
        """The token's caller (None: not a valid token)."""
        digest = hash_token(token)
        key = (digest, model_id)
        ttl = settings.SERVE_AUTH_TTL_SECONDS
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and now - entry.read_at < ttl:
            if entry.expiry is not None and entry.expiry < timezone.now():
                return None
            return entry
        alias = router.db_for_read(AuthToken)
        params = [
            *grant_condition_params(None, RegisteredModel, "serve", model_id),
            *grant_condition_params(None, RegisteredModel, "deploy", model_id),
        ]
        with connections[alias].cursor() as cursor:
            cursor.execute(self._sql(alias), [*params, token[: CONSTANTS.TOKEN_KEY_LENGTH]])
            rows = cursor.fetchall()
        for stored, expiry, user_id, username, active, superuser, granted, deploys in rows:
            if not compare_digest(digest, stored):
                continue
            if isinstance(expiry, str):  # SQLite may return text ...
                expiry = datetime.fromisoformat(expiry)
            if expiry is not None and expiry.tzinfo is None:  # ... or naive UTC
                expiry = expiry.replace(tzinfo=UTC)
            if not active or (expiry is not None and expiry < timezone.now()):
                return None
            entry = Caller(
                user_id,
                username,
                bool(granted or superuser),
                expiry,
                now,
                may_deploy=bool(deploys or superuser),
            )
            if ttl > 0:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[key] = entry
            return entry
        return None


# --- the process -------------------------------------------------------------------------


class ServingState:
    """Everything one serving process keeps: routes, models, auth, its identity."""

    def __init__(self) -> None:
        self.routing = RoutingTable()
        self.models = ModelCache()
        self.auth = AuthCache()
        self.token = secrets.token_hex(8)
        self.poller: threading.Thread | None = None
        self.loader: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._wanted: list[int] = []
        self._wanted_lock = threading.Lock()
        # Shadow scoring runs here, after the caller has its answer; at most
        # SERVE_SHADOW_MAX_PENDING requests wait, beyond that a shadow is skipped.
        self.shadows = ThreadPoolExecutor(max_workers=2, thread_name_prefix="serve-shadow")
        self._shadow_pending = 0
        self._shadow_lock = threading.Lock()

    def shadow_submit(self, work: Callable[[], None]) -> bool:
        with self._shadow_lock:
            if self._shadow_pending >= settings.SERVE_SHADOW_MAX_PENDING:
                return False
            self._shadow_pending += 1

        def run() -> None:
            try:
                work()
            except Exception:
                logger.warning("serving: a shadow prediction failed to run", exc_info=True)
            finally:
                with self._shadow_lock:
                    self._shadow_pending -= 1

        self.shadows.submit(run)
        return True

    # The poller: routing + report, every SERVE_POLL_SECONDS.

    @property
    def running(self) -> bool:
        return self.poller is not None and self.poller.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self.poller = threading.Thread(target=self._poll_loop, name="serve-poller", daemon=True)
        self.loader = threading.Thread(target=self._load_loop, name="serve-loader", daemon=True)
        self.poller.start()
        self.loader.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in (self.poller, self.loader):
            if thread is not None and thread.is_alive():
                thread.join(timeout=5)
        self.forget_me()

    def poll_once(self) -> None:
        self.routing.reload()
        wanted: set[int] = set()
        for route in self.routing.routes():
            wanted |= route.keep_warm()
        with self._wanted_lock:
            self._wanted = sorted(v for v in wanted if not self.models.has(v))
        self.models.evict(wanted)
        self.report()

    def report(self) -> None:
        from lifecycle.models import ServingProcess

        now = timezone.now()
        fields = {
            "last_seen_at": now,
            "warmed": self.models.warmed(),
            "failed": self.models.failed(),
        }
        if not ServingProcess.objects.filter(token=self.token).update(**fields):
            ServingProcess.objects.create(
                token=self.token, host=socket.gethostname()[:200], pid=os.getpid(), **fields
            )
            # Rows of processes gone for an hour are forgotten (a crash leaves one behind).
            ServingProcess.objects.filter(last_seen_at__lt=now - timedelta(hours=1)).delete()

    def forget_me(self) -> None:
        from lifecycle.models import ServingProcess

        try:
            ServingProcess.objects.filter(token=self.token).delete()
        except Exception:  # the database may be gone at exit; the row then goes stale
            logger.warning("could not remove this serving process's row", exc_info=True)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("serving poller: refresh failed; retrying")
                close_old_connections()
            self._wake.wait(settings.SERVE_POLL_SECONDS)
            self._wake.clear()

    def load_wanted(self) -> list[int]:
        """Load and warm what the last poll found routable and not yet here."""
        with self._wanted_lock:
            todo = list(self._wanted)
            self._wanted = []
        for version_id in todo:
            try:
                self.models.get(version_id)
                logger.info("serving: version %s loaded and warmed", version_id)
            except Exception:
                logger.warning("serving: version %s failed to load", version_id, exc_info=True)
            self._wake.set()  # report at once: a deployment may be waiting
        return todo

    def _load_loop(self) -> None:
        while not self._stop.is_set():
            todo = self.load_wanted()
            close_old_connections()
            self._stop.wait(0.05 if todo else 0.2)


STATE = ServingState()


def route_max_age() -> float:
    """How old a routing copy the request path accepts before re-reading it itself."""
    poll = settings.SERVE_POLL_SECONDS
    return poll * 4 if STATE.running else poll


# --- the endpoint ------------------------------------------------------------------------


def _token(request: HttpRequest) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme not in ("Token", "Bearer") or not token.strip():
        raise Refused(
            401,
            "not_authenticated",
            "Authentication credentials were not provided.",
        )
    return token.strip()


def _read_body(request: HttpRequest) -> bytes:
    limit = settings.SERVE_MAX_BODY_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise Refused(
            413,
            "payload_too_large",
            f"The body is {length} bytes; the limit is {limit}.",
            limit_bytes=limit,
        )
    body = request.read(limit + 1)
    if len(body) > limit:
        raise Refused(
            413,
            "payload_too_large",
            f"The body is over the limit of {limit} bytes.",
            limit_bytes=limit,
        )
    return body


def _wants_details(request: HttpRequest, params: dict[str, Any]) -> bool:
    if params.get("details") in (True, "true", 1):
        return True
    return request.GET.get("details", "").lower() in ("1", "true", "yes")


def _asked_version(request: HttpRequest) -> int | None:
    """The version a caller asks for (header ``X-Model-Version`` or ``?version=``)."""
    asked = request.META.get("HTTP_X_MODEL_VERSION", "") or request.GET.get("version", "")
    if not asked:
        return None
    if not asked.strip().isdigit() or len(asked.strip()) > 9:
        raise Refused(
            400, "invalid", "X-Model-Version and ?version= take a version number.", version=asked
        )
    return int(asked.strip())


def _chosen_version(
    request: HttpRequest, route: Route, caller: Caller, request_id: str
) -> tuple[int | None, int | None]:
    """The route's pick, unless the caller asks for a version: the stable one is anyone's;
    a candidate (a blue/green preview, a canary's) needs the deploy right (403 else:
    asking for a version and silently getting another would mislead the caller)."""
    asked = _asked_version(request)
    if asked is None:
        return route.pick(request_id)
    chosen = route.preview(asked)
    if chosen is None:
        raise Refused(
            404,
            "version_not_served",
            f"Version {asked} is not served by {route.model}/{route.environment}.",
            version=asked,
            stable=route.stable_number,
        )
    if chosen[0] != route.stable and not caller.may_deploy:
        raise Refused(
            403,
            "permission_denied",
            f"Calling version {asked} before it takes traffic needs the deploy right.",
            version=asked,
        )
    return chosen


@csrf_exempt
def invocations(request: HttpRequest, model_name: str, environment: str) -> HttpResponse:
    started = time.perf_counter()
    supplied = request.META.get("HTTP_X_REQUEST_ID", "")
    request_id = supplied if _SAFE_ID.match(supplied) else uuid.uuid4().hex
    route = None
    version_id = number = None
    caller = None
    try:
        if request.method != "POST":
            raise Refused(405, "method_not_allowed", "Use POST.")
        token = _token(request)
        try:
            route = STATE.routing.get(model_name, environment, max_age=route_max_age())
            caller = STATE.auth.caller(token, route.model_id if route else 0)
        except DatabaseError:
            logger.warning("serving: the database is unreachable", exc_info=True)
            route = None
            raise Refused(
                503, "unavailable", "The serving process cannot reach its database; retry."
            ) from None
        if caller is None:
            raise Refused(401, "authentication_failed", "Invalid or expired token.")
        if route is None or not caller.may_serve:
            route = None  # outside the caller's grants: no label on the metrics either
            raise Refused(404, "not_found", f"{model_name}/{environment} was not found.")
        version_id, number = _chosen_version(request, route, caller, request_id)
        if version_id is None:
            raise Refused(
                409,
                "no_version_deployed",
                f"Nothing is deployed to {model_name}/{environment} yet.",
            )
        body = _read_body(request)
        model = STATE.models.get(version_id)
        try:
            parsed = scoring.parse_body(
                body,
                request.META.get("CONTENT_TYPE", ""),
                model.specs,
                max_rows=settings.SERVE_MAX_ROWS,
            )
            arrays = scoring.validate(parsed, model.specs)
        except scoring.ScoringError as exc:
            raise Refused(exc.status, exc.code, exc.message, **exc.details) from None
        details = _wants_details(request, parsed.params)
        try:
            predictions, proba = model.predict_rows(arrays, parsed.rows)
        except Exception as exc:
            logger.info("prediction failed for %s v%s: %s", model.model_name, number, exc)
            raise Refused(
                422,
                "prediction_failed",
                f"The model could not predict on this input: {str(exc)[:300]}",
            ) from None
    except Refused as refusal:
        latency = time.perf_counter() - started
        response = error_response(refusal.status, refusal.code, refusal.message, refusal.details)
        response["X-Request-ID"] = request_id
        if route is not None and version_id is not None:
            response["X-Model-Version"] = str(number)
            metrics.observe(route.model, route.environment, number, refusal.status, latency)
            prediction_log.record_error(
                environment_id=route.environment_id,
                version_id=version_id,
                user_id=caller.user_id if caller else None,
                request_id=request_id,
                latency=latency,
                status=refusal.status,
                code=refusal.code,
                column=str(refusal.details.get("column", "")),
            )
        else:
            metrics.rejected(refusal.status)
        return response

    payload: dict[str, Any] = {"predictions": predictions}
    positive = None
    if proba is not None and model.positive is not None:
        positive = proba[:, model.positive]
    if details:
        payload.update(
            model=route.model,
            environment=route.environment,
            version=number,
            request_id=request_id,
        )
        if proba is not None:
            payload["classes"] = model.classes
            payload["probabilities"] = np.round(proba, 6).tolist()
    response = HttpResponse(json.dumps(payload), content_type="application/json")
    response["X-Request-ID"] = request_id
    response["X-Model-Version"] = str(number)
    latency = time.perf_counter() - started
    metrics.observe(route.model, route.environment, number, 200, latency)
    prediction_log.record(
        environment_id=route.environment_id,
        version_id=version_id,
        user_id=caller.user_id,
        request_id=request_id,
        latency=latency,
        features=arrays,
        predictions=predictions,
        probability=positive,
    )
    shadow = route.shadow_of(request_id)
    if shadow is not None:
        STATE.shadow_submit(
            lambda: _score_shadow(route, shadow, caller.user_id, request_id, arrays, parsed.rows)
        )
    return response


def _score_shadow(
    route: Route, version_id: int, user_id: int, request_id: str, arrays: Any, rows: int
) -> None:
    """Off the request path: the shadow version scores the same rows; logged as shadow."""
    started = time.perf_counter()
    common = {
        "environment_id": route.environment_id,
        "version_id": version_id,
        "user_id": user_id,
        "request_id": request_id,
        "shadow": True,
    }
    try:
        model = STATE.models.get(version_id)
        predictions, proba = model.predict_rows(arrays, rows)
    except Exception as exc:
        prediction_log.record_error(
            latency=time.perf_counter() - started,
            status=422,
            code="prediction_failed",
            **common,
        )
        logger.info("shadow prediction failed for version %s: %s", version_id, exc)
        return
    positive = None
    if proba is not None and model.positive is not None:
        positive = proba[:, model.positive]
    prediction_log.record(
        latency=time.perf_counter() - started,
        features=arrays,
        predictions=predictions,
        probability=positive,
        **common,
    )
