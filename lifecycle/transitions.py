"""Lifecycle state tables and the decisions made on them (pure: no Django).

Each section is one aggregate's table; its one writer (a private function in
the aggregate's service module) checks it before every change.

--- Deployments ---

An environment's routing state (stable version, candidate version and its
traffic share, strategy step, phase) changes only through the functions
below, each one an *event* checked against ``ENVIRONMENT_TRANSITIONS``; the
one writer (``lifecycle.deployments``) applies the returned state to the row
under its lock and records a history row and an audit event. Versions are
referred to by id.

Environment phases and events::

    idle       --deploy_started--> deploying   (a deployment warms its version)
    deploying  --switched--------> idle        (stable := the deployed version)
    deploying  --deploy_failed---> idle        (nothing switched)
    idle|deploying --rolled_back-> idle        (candidate removed, else stable := previous)
    idle       --split_set-------> idle        (candidate + share: the rollouts drive it)

A deployment's own status::

    pending -> warming -> succeeded | failed
    pending -> failed                  (refused or superseded before it ran)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

IDLE = "idle"
DEPLOYING = "deploying"
PHASES = (IDLE, DEPLOYING)

CREATED = "created"
DEPLOY_STARTED = "deploy_started"
SWITCHED = "switched"
DEPLOY_FAILED = "deploy_failed"
ROLLED_BACK = "rolled_back"
SPLIT_SET = "split_set"
EVENTS = (CREATED, DEPLOY_STARTED, SWITCHED, DEPLOY_FAILED, ROLLED_BACK, SPLIT_SET)

ENVIRONMENT_TRANSITIONS: dict[tuple[str, str], str] = {
    (IDLE, DEPLOY_STARTED): DEPLOYING,
    (DEPLOYING, SWITCHED): IDLE,
    (DEPLOYING, DEPLOY_FAILED): IDLE,
    (IDLE, ROLLED_BACK): IDLE,
    (DEPLOYING, ROLLED_BACK): IDLE,
    (IDLE, SPLIT_SET): IDLE,
}

PENDING = "pending"
WARMING = "warming"
SUCCEEDED = "succeeded"
FAILED = "failed"
DEPLOYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({WARMING, FAILED}),
    WARMING: frozenset({SUCCEEDED, FAILED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
}
DEPLOYMENT_TERMINAL = frozenset({SUCCEEDED, FAILED})


class TransitionRefused(Exception):
    """The event is not allowed in this state; ``code`` and ``details`` say why."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class EnvironmentState:
    phase: str = IDLE
    stable: int | None = None
    # The stable version before the current one: what a rollback restores.
    previous: int | None = None
    candidate: int | None = None
    share: float = 0.0  # of requests routed to the candidate, in [0, 1]
    step: int = 0  # the strategy's step (the rollouts issue drives it)
    target: int | None = None  # the version a deployment in progress warms

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "stable": self.stable,
            "previous": self.previous,
            "candidate": self.candidate,
            "share": self.share,
            "step": self.step,
            "target": self.target,
        }


def _next_phase(state: EnvironmentState, event: str) -> str:
    phase = ENVIRONMENT_TRANSITIONS.get((state.phase, event))
    if phase is None:
        if state.phase == DEPLOYING:
            raise TransitionRefused(
                "deployment_in_progress",
                "A deployment is in progress in this environment; wait for it or roll back.",
                phase=state.phase,
                event=event,
            )
        raise TransitionRefused(
            "invalid_transition",
            f"An environment that is {state.phase} cannot take {event}.",
            phase=state.phase,
            event=event,
        )
    return phase


def deploy_started(state: EnvironmentState, *, version: int) -> EnvironmentState:
    """A deployment of ``version`` begins: the environment warms it, traffic unchanged."""
    phase = _next_phase(state, DEPLOY_STARTED)
    if version == state.stable and state.candidate is None:
        raise TransitionRefused(
            "already_deployed", "This version already serves all of the environment's traffic."
        )
    return replace(state, phase=phase, target=version)


def switched(state: EnvironmentState, *, version: int) -> EnvironmentState:
    """Direct strategy: every request goes to ``version`` at once."""
    phase = _next_phase(state, SWITCHED)
    if state.target != version:
        raise TransitionRefused(
            "superseded",
            "The environment no longer waits for this version.",
            target=state.target,
            version=version,
        )
    return EnvironmentState(
        phase=phase,
        stable=version,
        previous=state.stable if state.stable != version else state.previous,
        candidate=None,
        share=0.0,
        step=0,
        target=None,
    )


def deploy_failed(state: EnvironmentState) -> EnvironmentState:
    phase = _next_phase(state, DEPLOY_FAILED)
    return replace(state, phase=phase, target=None)


def rolled_back(state: EnvironmentState, *, earlier: int | None) -> EnvironmentState:
    """Undo the latest change of traffic, at once.

    With a candidate taking traffic, the candidate is removed (all traffic to
    stable). Otherwise stable goes back to ``previous``, and ``earlier`` (the
    stable before that one, from the history) becomes the new ``previous``, so
    that a second rollback keeps going back rather than forth. A deployment in
    progress is abandoned.
    """
    phase = _next_phase(state, ROLLED_BACK)
    if state.candidate is not None:
        return replace(state, phase=phase, candidate=None, share=0.0, step=0, target=None)
    if state.previous is None:
        raise TransitionRefused(
            "nothing_to_roll_back",
            "This environment has no previous stable version to roll back to.",
            stable=state.stable,
        )
    return EnvironmentState(
        phase=phase,
        stable=state.previous,
        previous=earlier if earlier != state.previous else None,
        candidate=None,
        share=0.0,
        step=0,
        target=None,
    )


def split_set(
    state: EnvironmentState, *, candidate: int | None, share: float, step: int = 0
) -> EnvironmentState:
    """Route ``share`` of the requests to ``candidate`` (None and 0 remove it)."""
    phase = _next_phase(state, SPLIT_SET)
    if not isinstance(share, int | float) or not math.isfinite(share) or not 0 <= share <= 1:
        raise TransitionRefused("invalid", "The share is a number between 0 and 1.", share=share)
    if candidate is None:
        if share:
            raise TransitionRefused("invalid", "A share needs a candidate version.", share=share)
        return replace(state, phase=phase, candidate=None, share=0.0, step=0)
    if state.stable is None:
        raise TransitionRefused(
            "no_stable_version", "An environment needs a stable version before a candidate."
        )
    if candidate == state.stable:
        raise TransitionRefused(
            "invalid", "The candidate is already the stable version.", candidate=candidate
        )
    return replace(state, phase=phase, candidate=candidate, share=float(share), step=step)


def deployment_next(current: str, to: str) -> str:
    """Check a deployment's status change against ``DEPLOYMENT_TRANSITIONS``."""
    if to not in DEPLOYMENT_TRANSITIONS[current]:
        raise TransitionRefused(
            "invalid_transition",
            f"A {current} deployment cannot become {to}.",
            current=current,
            requested=to,
        )
    return to


# --------------------------------------------------------------------------- retraining

# ``RetrainingRun.outcome``: what became of the run's candidate version. The job's
# own ``status`` (queued/running/succeeded/failed) belongs to ``common.jobs``; the
# outcome moves only once the job has registered a version (its transaction sets
# the first step), then when the registry has validated it (the follow-up).
RUN_PENDING = "pending"
RUN_AWAITING_VALIDATION = "awaiting_validation"
RUN_REJECTED_BY_CHAMPION = "rejected_by_champion"
RUN_NOT_COMPARABLE = "not_comparable"
RUN_CANDIDATE_READY = "candidate_ready"
RUN_CANDIDATE_SUBMITTED = "candidate_submitted"
RUN_VERSION_FAILED = "version_failed"

RETRAINING_OUTCOME_TRANSITIONS: dict[str, frozenset[str]] = {
    # The job registered the candidate: accepted by the champion comparison, or not.
    RUN_PENDING: frozenset({RUN_AWAITING_VALIDATION, RUN_REJECTED_BY_CHAMPION, RUN_NOT_COMPARABLE}),
    # The registry validated it: submitted for review (policy says so) or left ready.
    RUN_AWAITING_VALIDATION: frozenset(
        {RUN_CANDIDATE_SUBMITTED, RUN_CANDIDATE_READY, RUN_VERSION_FAILED}
    ),
    # A candidate the champion beat (or that could not be compared) is never
    # submitted automatically; it can still fail validation.
    RUN_REJECTED_BY_CHAMPION: frozenset({RUN_VERSION_FAILED}),
    RUN_NOT_COMPARABLE: frozenset({RUN_VERSION_FAILED}),
    RUN_CANDIDATE_READY: frozenset(),
    RUN_CANDIDATE_SUBMITTED: frozenset(),
    RUN_VERSION_FAILED: frozenset(),
}


def outcome_after_registration(verdict: str) -> str:
    """The outcome a run takes when it registers its candidate, from the champion verdict."""
    return {
        "accepted": RUN_AWAITING_VALIDATION,
        "rejected_by_champion": RUN_REJECTED_BY_CHAMPION,
        "not_comparable": RUN_NOT_COMPARABLE,
    }[verdict]


def outcome_after_validation(current: str, *, version_ready: bool, submit: bool) -> str | None:
    """The outcome once the registry has decided; None when the outcome stays as it is."""
    if not version_ready:
        return RUN_VERSION_FAILED
    if current != RUN_AWAITING_VALIDATION:
        return None  # rejected or not comparable: never submitted automatically
    return RUN_CANDIDATE_SUBMITTED if submit else RUN_CANDIDATE_READY


def debounce_met(held: list[bool], *, k: int, n: int) -> bool:
    """SageMaker's DatapointsToAlert: the condition held in at least ``k`` of the last ``n``
    checks (``held`` newest first; fewer than ``n`` checks count with what there is)."""
    return sum(1 for h in held[:n] if h) >= k
