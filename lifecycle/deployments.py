"""Environments and deployments: the one writer of an environment's routing state.

Every change goes through ``_apply``: under the model's and the environment's
row locks (that order, as ``registry.services.alias_set`` takes the model's
first), it checks the event against ``lifecycle.transitions``, writes the
fields, bumps ``generation`` (the serving processes' routing caches compare
it), appends an ``EnvironmentTransition``, moves the environment's alias
(``model@production``) to the stable version through ``alias_set`` (so
governance's gate runs and ``model@production`` never disagrees with what
serves traffic), then appends the audit event (its lock is taken last) and
publishes the event after commit.

The environment's alias is guarded (``environment_alias_guard``): an alias
that names an environment moves only from here.

A direct deployment is a job: ``deployment_start`` (API, UI) marks the version
as the environment's target and queues the job; the worker's
``deployment_run`` waits until every live serving process reports the version
warmed (loaded, and answered a prediction on the signature's example row),
then switches in one transaction; a process that cannot load it, or a
timeout, fails the deployment with nothing switched. A rollback is immediate.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.audit import SystemActor, audit_record
from common.errors import DomainError, conflict
from common.events import publish_event
from common.jobs import job_enqueue, job_finish, job_progress
from common.permissions import require
from lifecycle import transitions as t
from lifecycle.models import (
    Deployment,
    DeploymentState,
    Environment,
    EnvironmentTransition,
    ServingProcess,
    Strategy,
)
from registry.choices import VersionStatus
from registry.gates import check_alias_gates
from registry.models import Alias, ModelVersion, RegisteredModel
from registry.services import alias_set

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # an alias name: the environment's alias
_moving_alias: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "environment_alias_move", default=None
)


# --- the alias guard -------------------------------------------------------------


@contextmanager
def _alias_move(environment: Environment) -> Iterator[None]:
    token = _moving_alias.set(environment.pk)
    try:
        yield
    finally:
        _moving_alias.reset(token)


def environment_alias_guard(*, actor: Any, model: RegisteredModel, alias_name: str) -> None:
    """Registry alias guard: ``model@<environment>`` moves only through a deployment."""
    environment = (
        Environment.objects.filter(registered_model=model, name=alias_name).only("pk").first()
    )
    if environment is None or _moving_alias.get() == environment.pk:
        return
    raise conflict(
        "environment_alias",
        f"{model.name}@{alias_name} follows the {alias_name!r} environment's stable version; "
        f"deploy or roll back through /api/v1/models/{model.name}/environments/{alias_name}/.",
        alias=alias_name,
        environment=alias_name,
    )


# --- helpers ---------------------------------------------------------------------


def _numbers(state: t.EnvironmentState) -> dict[str, Any]:
    """The state with version numbers instead of ids (history rows, audit events)."""
    ids = {state.stable, state.previous, state.candidate, state.target} - {None}
    numbers = dict(ModelVersion.objects.filter(pk__in=ids).values_list("pk", "number"))
    plain = state.as_dict()
    for key in ("stable", "previous", "candidate", "target"):
        plain[key] = numbers.get(plain[key]) if plain[key] is not None else None
    return plain


def _refused(exc: t.TransitionRefused) -> DomainError:
    return DomainError(
        exc.code, exc.message, details=exc.details, status=400 if exc.code == "invalid" else 409
    )


def _person(actor: Any) -> Any:
    return None if isinstance(actor, SystemActor) or actor is None else actor


def _locked(environment: Environment) -> Environment:
    # Lock order: the model row, then the environment (alias_set locks the model first too).
    # FOR NO KEY UPDATE (no_key): it serializes with every other locker of the row, but
    # not with the foreign-key checks of rows inserted under the model (a label batch's,
    # taken at its COMMIT after it has audited), which FOR UPDATE blocked: that
    # transaction then waited for the model row while this one waited for the audit
    # chain, a deadlock seen on PostgreSQL under `make loop`'s traffic.
    RegisteredModel.objects.select_for_update(no_key=True).get(pk=environment.registered_model_id)
    return (
        Environment.objects.select_for_update()
        .select_related("registered_model")
        .get(pk=environment.pk)
    )


def _earlier_stable(environment: Environment, version_id: int | None) -> int | None:
    """The stable version that preceded ``version_id`` the last time it became stable."""
    if version_id is None:
        return None
    row = (
        EnvironmentTransition.objects.filter(environment=environment, stable_after_id=version_id)
        .exclude(event=t.ROLLED_BACK)  # a rollback's "before" is the version rolled away from
        .exclude(stable_before_id=version_id)
        .exclude(stable_before__isnull=True)
        .order_by("-id")
        .values_list("stable_before_id", flat=True)
        .first()
    )
    return row


def _apply(
    environment: Environment,
    new: t.EnvironmentState,
    *,
    event: str,
    actor: Any,
    reason: str = "",
    deployment: Deployment | None = None,
) -> EnvironmentTransition:
    """Write ``new`` onto the locked ``environment``: the one writer of its state."""
    old = environment.state()
    environment.phase = new.phase
    environment.stable_version_id = new.stable
    environment.previous_version_id = new.previous
    environment.candidate_version_id = new.candidate
    environment.candidate_share = new.share
    environment.step = new.step
    environment.target_version_id = new.target
    environment.candidate_mode = new.mode
    if new.stable != old.stable:
        environment.stable_since = timezone.now()
        environment.deployed_by = _person(actor)
    environment.generation += 1  # read under the row lock: no lost update
    environment.save()
    before, after = _numbers(old), _numbers(new)
    row = EnvironmentTransition.objects.create(
        environment=environment,
        event=event,
        before=before,
        after=after,
        stable_before_id=old.stable,
        stable_after_id=new.stable,
        deployment=deployment,
        actor=_person(actor),
        actor_name=str(getattr(actor, "username", actor))[:150],
        reason=reason,
    )
    if new.stable is not None and new.stable != old.stable:
        with _alias_move(environment):
            alias_set(
                actor=actor,
                model=environment.registered_model,
                name=environment.name,
                version_number=after["stable"],
                protected=environment.protected,
                required_action="deploy",
            )
    audit_record(
        actor=actor,
        action=f"lifecycle.environment.{event}",
        obj=environment,
        before=before,
        after={**after, "reason": reason} if reason else after,
    )
    publish_event(
        f"lifecycle.environment.{event}",
        {
            "model": environment.registered_model.name,
            "environment": environment.name,
            "before": before,
            "after": after,
            "reason": reason,
            "deployment": deployment.pk if deployment else None,
            "actor": str(getattr(actor, "username", actor)),
        },
    )
    return row


def _version_of(environment: Environment, version: ModelVersion) -> ModelVersion:
    if version.registered_model_id != environment.registered_model_id:
        raise DomainError(
            "invalid",
            f"{version} belongs to another model than the environment {environment}.",
            details={"version": version.number, "model": version.registered_model.name},
        )
    if version.status != VersionStatus.READY:
        raise conflict(
            "version_not_ready",
            f"{version} is {version.status}; only a ready version can be deployed.",
            version_status=version.status,
        )
    return version


def _gate(actor: Any, environment: Environment, version: ModelVersion) -> None:
    """A protected environment takes what its protected alias takes (governance's gate)."""
    if environment.protected:
        check_alias_gates(actor=actor, alias_name=environment.name, version=version)


# --- environments ----------------------------------------------------------------


@transaction.atomic
def environment_create(
    *, actor: Any, model: RegisteredModel, name: str, protected: bool | None = None
) -> Environment:
    """A new environment of ``model``; an existing alias of that name becomes its stable version.

    ``production`` (any name in ALWAYS_PROTECTED_ALIASES) is always protected.
    Needs the manage right.
    """
    require(actor, "manage", model)
    if not isinstance(name, str) or not _NAME.match(name):
        raise DomainError(
            "invalid",
            "An environment is named by 1-64 lowercase letters, digits or hyphens.",
            details={"name": str(name)[:80]},
        )
    always = name in settings.ALWAYS_PROTECTED_ALIASES
    if protected is False and always:
        raise DomainError(
            "always_protected",
            f"{name!r} is always protected (ALWAYS_PROTECTED_ALIASES).",
            details={"environment": name},
        )
    model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    alias = (
        Alias.objects.filter(registered_model=model, name=name).select_related("version").first()
    )
    is_protected = bool(always or protected or (alias is not None and alias.protected))
    try:
        with transaction.atomic():
            environment = Environment.objects.create(
                registered_model=model, name=name, protected=is_protected
            )
    except IntegrityError:
        raise conflict(
            "already_exists", f"{model.name} already has an environment {name!r}."
        ) from None
    environment.registered_model = model
    adopted = t.EnvironmentState(stable=alias.version_id if alias else None)
    if alias is not None and alias.protected != is_protected:
        # The alias becomes protected with its environment: the gate judges its version now.
        with _alias_move(environment):
            alias_set(
                actor=actor,
                model=model,
                name=name,
                version_number=alias.version.number,
                protected=True,
                required_action="deploy",
            )
    environment.stable_version_id = adopted.stable
    environment.stable_since = timezone.now() if alias else None
    environment.deployed_by = alias.updated_by if alias else None
    environment.save()
    EnvironmentTransition.objects.create(
        environment=environment,
        event=t.CREATED,
        before=None,
        after=_numbers(adopted),
        stable_after_id=adopted.stable,
        actor=_person(actor),
        actor_name=str(getattr(actor, "username", actor))[:150],
        reason=f"created by {actor}, adopting {model.name}@{name}"
        if alias
        else f"created by {actor}, nothing deployed yet",
    )
    audit_record(
        actor=actor,
        action="lifecycle.environment.created",
        obj=environment,
        after={"protected": is_protected, **_numbers(adopted)},
    )
    return environment


# --- deployments -----------------------------------------------------------------


@transaction.atomic
def deployment_start(
    *,
    actor: Any,
    environment: Environment,
    version: ModelVersion,
    strategy: str = Strategy.DIRECT,
    plan: dict[str, Any] | None = None,
) -> Deployment:
    """Ask for ``version`` in ``environment``: refused at once (nothing changed) when
    it cannot go there; else the environment warms it and a worker switches (or,
    for a rollout strategy, replays and exposes it: ``lifecycle.rollouts``).

    ``plan`` holds the rollout's options (``rollouts.PLAN_FIELDS``: ``steps``,
    ``step_seconds``, ``thresholds``, ``shadow_share``, ``duration_seconds``,
    ``hold_seconds``: a blue/green preview's hold).
    """
    from lifecycle import rollouts

    require(actor, "deploy", environment.registered_model)
    if strategy not in Strategy.values:
        raise DomainError(
            "invalid",
            f"Unknown strategy {strategy!r}.",
            details={"strategy": strategy, "strategies": Strategy.values},
        )
    fields = rollouts.rollout_plan(strategy=strategy, plan=plan)
    _version_of(environment, version)
    environment = _locked(environment)
    _gate(actor, environment, version)
    try:
        new = t.deploy_started(environment.state(), version=version.pk)
    except t.TransitionRefused as exc:
        raise _refused(exc) from None
    rollouts.check_can_start(
        environment=environment,
        strategy=strategy,
        preview=bool(fields.get("duration_seconds")) and strategy == Strategy.BLUE_GREEN,
        metric=fields.get("metric", ""),
    )
    deployment = Deployment.objects.create(
        environment=environment,
        version=version,
        strategy=strategy,
        requested_by=actor,
        **fields,
    )
    _apply(
        environment,
        new,
        event=t.DEPLOY_STARTED,
        actor=actor,
        reason=_start_reason(deployment, actor),
        deployment=deployment,
    )
    audit_record(
        actor=actor,
        action="lifecycle.deployment.requested",
        obj=deployment,
        after={
            "environment": environment.name,
            "version": version.number,
            "strategy": strategy,
            **{k: v for k, v in fields.items() if k != "thresholds"},
        },
    )
    job_enqueue(deployment)
    return deployment


def _deployment_state(deployment: Deployment, to: str) -> None:
    deployment.state = t.deployment_next(deployment.state, to)


def _live_processes(now: Any = None) -> list[ServingProcess]:
    now = now or timezone.now()
    since = now - timedelta(seconds=settings.SERVE_PROCESS_STALE_SECONDS)
    return list(ServingProcess.objects.filter(last_seen_at__gte=since).order_by("host", "pid"))


def _warm_status(version_id: int) -> tuple[list[ServingProcess], list[ServingProcess], dict]:
    """(live processes, those still cold, {process: error} for those that failed)."""
    live = _live_processes()
    cold = [p for p in live if version_id not in (p.warmed or [])]
    failed = {p: (p.failed or {}).get(str(version_id)) for p in cold}
    return live, cold, {p: e for p, e in failed.items() if e}


def deployment_run(*, job: Deployment, poll_seconds: float = 0.25) -> Deployment:
    """The worker's half of a direct deployment: warm every serving process, then switch.

    Waits until each live serving process (seen in the last
    SERVE_PROCESS_STALE_SECONDS) reports the version warmed, at most
    SERVE_WARM_TIMEOUT_SECONDS; a process that failed to load it, or the
    timeout, fails the deployment and nothing is switched. With no serving
    process alive the switch is immediate (said in the deployment's log).
    """
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=job.pk)
        if deployment.state in t.DEPLOYMENT_TERMINAL:
            job_finish(job, log=f"deployment already {deployment.state}")
            return Deployment.objects.get(pk=job.pk)
        if deployment.state == DeploymentState.PENDING:
            _deployment_state(deployment, DeploymentState.WARMING)
            deployment.save(update_fields=["state"])
    version_id = deployment.version_id
    deadline = time.monotonic() + settings.SERVE_WARM_TIMEOUT_SECONDS
    beat = 0.0
    while True:
        state = Deployment.objects.filter(pk=job.pk).values_list("state", flat=True).get()
        if state in t.DEPLOYMENT_TERMINAL:  # a rollback superseded it
            with transaction.atomic():
                job_finish(job, log=f"deployment {state} while warming")
            return Deployment.objects.get(pk=job.pk)
        live, cold, failed = _warm_status(version_id)
        if failed:
            process, error = next(iter(failed.items()))
            return _fail(
                job,
                f"serving process {process.host}:{process.pid} could not load the version: {error}",
            )
        if not cold:
            from lifecycle import rollouts

            report = {
                "processes": [{"host": p.host, "pid": p.pid} for p in live],
                "note": (
                    f"{len(live)} serving process(es) warmed"
                    if live
                    else "no serving process alive: switched without warm-up"
                ),
            }
            return rollouts.after_warm(job, report)
        if time.monotonic() > deadline:
            names = ", ".join(f"{p.host}:{p.pid}" for p in cold)
            return _fail(
                job,
                f"{len(cold)} of {len(live)} serving process(es) did not report the version "
                f"warmed within {settings.SERVE_WARM_TIMEOUT_SECONDS}s: {names}",
            )
        if time.monotonic() - beat > min(5.0, settings.JOB_STALE_AFTER_SECONDS / 3):
            beat = time.monotonic()
            if not job_progress(job, log=f"waiting for {len(cold)} of {len(live)} process(es)"):
                raise DomainError("job_lost", "The deployment job was taken over.")
        time.sleep(poll_seconds)


def _switch(job: Deployment, report: dict[str, Any]) -> Deployment:
    try:
        with transaction.atomic():
            # Lock order as everywhere here: model, environment, then the deployment.
            environment = _locked(Deployment.objects.get(pk=job.pk).environment)
            deployment = Deployment.objects.select_for_update().get(pk=job.pk)
            if deployment.state != DeploymentState.WARMING:
                job_finish(job, log=f"deployment already {deployment.state}")
                return Deployment.objects.get(pk=job.pk)
            try:
                new = t.switched(environment.state(), version=deployment.version_id)
            except t.TransitionRefused as exc:
                raise _refused(exc) from None
            actor = deployment.requested_by
            _apply(
                environment,
                new,
                event=t.SWITCHED,
                actor=actor,
                reason=_switch_reason(deployment, report),
                deployment=deployment,
            )
            _deployment_state(deployment, DeploymentState.SUCCEEDED)
            deployment.switched_at = timezone.now()
            deployment.warm_report = report
            deployment.save(update_fields=["state", "switched_at", "warm_report"])
            job_finish(job, log=f"switched: {report['note']}")
            audit_record(
                actor=actor,
                action="lifecycle.deployment.succeeded",
                obj=deployment,
                after={
                    "environment": environment.name,
                    "version": deployment.version.number,
                    "warm_report": report,
                },
            )
    except DomainError as exc:
        # The gate or the rights said no at the last moment (an approval expired,
        # the deploy right was revoked): nothing switched.
        return _fail(job, exc.message)
    return Deployment.objects.get(pk=job.pk)


def _fail(job: Deployment, reason: str) -> Deployment:
    with transaction.atomic():
        deployment_mark_failed(deployment=job, reason=reason)
        job_finish(job, log=f"failed: {reason}")
    return Deployment.objects.get(pk=job.pk)


def deployment_mark_failed(*, deployment: Deployment, reason: str) -> Deployment:
    """The deployment fails; its environment stops waiting for it. Nothing switches."""
    environment = _locked(Deployment.objects.get(pk=deployment.pk).environment)
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    if deployment.state in t.DEPLOYMENT_TERMINAL:
        return deployment
    actor = SystemActor(f"lifecycle.deployment#{deployment.pk}")
    state = environment.state()
    if state.phase == t.DEPLOYING and state.target == deployment.version_id:
        _apply(
            environment,
            t.deploy_failed(state),
            event=t.DEPLOY_FAILED,
            actor=actor,
            reason=reason,
            deployment=deployment,
        )
    elif state.phase in (t.ROLLING, t.SHADOWING) and state.target == deployment.version_id:
        # A rollout that fails while exposed: the candidate loses its traffic at once.
        _apply(
            environment,
            t.rolled_back(state, earlier=None),
            event=t.ROLLED_BACK,
            actor=actor,
            reason=reason,
            deployment=deployment,
        )
    _deployment_state(deployment, DeploymentState.FAILED)
    deployment.reason = reason[:4000]
    deployment.next_check_at = None
    deployment.save(update_fields=["state", "reason", "next_check_at"])
    audit_record(
        actor=actor,
        action="lifecycle.deployment.failed",
        obj=deployment,
        after={"reason": deployment.reason},
    )
    return deployment


def deployment_gave_up(*, job: Deployment) -> None:
    """Failure handler: the job could not run to its end; the deployment fails."""
    deployment_mark_failed(deployment=job, reason=f"The deployment job failed: {job.error}")


# --- rollback and split --------------------------------------------------------------


@transaction.atomic
def environment_rollback(*, actor: Any, environment: Environment, reason: str) -> Environment:
    """Restore the previous stable version at once (or drop the candidate's traffic).

    A deployment in progress is abandoned (failed, superseded by the rollback).
    For a protected environment the restored version must still pass the gate.
    """
    require(actor, "deploy", environment.registered_model)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(
            "invalid", "A rollback needs a reason.", details={"reason": "This field is required."}
        )
    environment = _locked(environment)
    state = environment.state()
    try:
        new = t.rolled_back(state, earlier=_earlier_stable(environment, state.previous))
    except t.TransitionRefused as exc:
        raise _refused(exc) from None
    if new.stable != state.stable and new.stable is not None:
        _gate(actor, environment, ModelVersion.objects.get(pk=new.stable))
    pending = list(
        Deployment.objects.select_for_update().filter(
            environment=environment,
            state__in=[
                DeploymentState.PENDING,
                DeploymentState.WARMING,
                DeploymentState.PROGRESSING,
                DeploymentState.PAUSED,
            ],
        )
    )
    _apply(environment, new, event=t.ROLLED_BACK, actor=actor, reason=reason[:2000])
    for deployment in pending:
        live = deployment.state in t.DEPLOYMENT_LIVE
        _deployment_state(deployment, DeploymentState.ABORTED if live else DeploymentState.FAILED)
        deployment.reason = f"superseded by a rollback: {reason}"[:4000]
        deployment.next_check_at = None
        deployment.save(update_fields=["state", "reason", "next_check_at"])
    return environment


@transaction.atomic
def environment_split_set(
    *,
    actor: Any,
    environment: Environment,
    candidate: ModelVersion | None,
    share: float,
    step: int = 0,
) -> Environment:
    """Route ``share`` of the environment's requests (by request id) to ``candidate``.

    The rollout strategies drive this; a protected environment's candidate
    must pass the same gate as its stable version.
    """
    require(actor, "deploy", environment.registered_model)
    if candidate is not None:
        _version_of(environment, candidate)
    environment = _locked(environment)
    if candidate is not None:
        _gate(actor, environment, candidate)
    try:
        new = t.split_set(
            environment.state(),
            candidate=candidate.pk if candidate else None,
            share=share,
            step=step,
        )
    except t.TransitionRefused as exc:
        raise _refused(exc) from None
    reason = (
        f"split set by {actor}: {share:.0%} of the requests to v{candidate.number}"
        if candidate is not None
        else f"split set by {actor}: the candidate removed"
    )
    _apply(environment, new, event=t.SPLIT_SET, actor=actor, reason=reason)
    return environment


def _start_reason(deployment: Deployment, actor: Any) -> str:
    """Why the environment started deploying: who asked, with which strategy and plan."""
    plan = {
        Strategy.CANARY: f"steps {' → '.join(map(str, deployment.steps or []))} %",
        Strategy.SHADOW: f"shadow on {deployment.shadow_share:.0%} of the requests",
        Strategy.AB: f"A/B split {deployment.shadow_share:.0%} to the candidate",
        Strategy.BLUE_GREEN: f"preview held {deployment.duration_seconds:g}s"
        if deployment.duration_seconds
        else "one switch",
    }.get(deployment.strategy, "")
    return (
        f"v{deployment.version.number} requested by {actor}: {deployment.strategy}"
        + (f", {plan}" if plan else "")
        + "; warming it in every serving process"
    )[:2000]


def _switch_reason(deployment: Deployment, report: dict[str, Any]) -> str:
    """Why the stable version changed: warmed everywhere, and the replay's verdict."""
    replay = deployment.analyses.filter(kind="replay").order_by("-id").first()
    parts = [report.get("note") or "warmed"]
    if replay is not None:
        parts.append(f"replay {replay.verdict}" + (f" ({replay.reason})" if replay.reason else ""))
    label = {Strategy.DIRECT: "direct deployment"}.get(deployment.strategy, deployment.strategy)
    return f"{label} of v{deployment.version.number}: " + "; ".join(parts)
