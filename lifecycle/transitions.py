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
    deploying|rolling --canary_step--> rolling (candidate := target, share := the step's)
    rolling    --switched--------> idle        (a canary promoted: stable := the candidate)
    rolling    --rolled_back-----> idle        (candidate removed: all traffic to stable)
    deploying  --shadow_started--> shadowing   (candidate scores a share of requests, unseen)
    shadowing  --shadow_ended----> idle        (candidate removed; stable never changed)
    shadowing  --rolled_back-----> idle
    deploying  --preview_started-> previewing (blue/green held: the candidate is warm and
                                              answers only callers who ask for it by
                                              version; stable takes all traffic)
    previewing --switched--------> idle        (promoted, or the hold ran out)
    previewing --rolled_back-----> idle        (candidate removed; stable never changed)

While an environment is deploying, rolling or shadowing it takes no other
deployment (``deployment_in_progress``): one rollout at a time.

A deployment's own status::

    pending -> warming -> succeeded | failed
    pending -> failed                  (refused or superseded before it ran)
    warming -> progressing             (a canary's first step, a shadow's start)
    progressing <-> paused             (a person; or too many inconclusive analyses)
    progressing | paused -> succeeded  (promoted; a shadow that ran its course)
    progressing | paused -> rolled_back (an analysis failed its limit; a rollback)
    progressing | paused -> aborted    (a person aborted: traffic back to stable)
    progressing | paused -> failed     (the job gave up)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

IDLE = "idle"
DEPLOYING = "deploying"
ROLLING = "rolling"
SHADOWING = "shadowing"
PREVIEWING = "previewing"
PHASES = (IDLE, DEPLOYING, ROLLING, SHADOWING, PREVIEWING)
BUSY_PHASES = frozenset({DEPLOYING, ROLLING, SHADOWING, PREVIEWING})

SPLIT = "split"  # the candidate answers its share of the requests
SHADOW = "shadow"  # the candidate scores its share too, but only stable answers
PREVIEW = "preview"  # the candidate answers only callers who ask for it (blue/green)

CREATED = "created"
DEPLOY_STARTED = "deploy_started"
SWITCHED = "switched"
DEPLOY_FAILED = "deploy_failed"
ROLLED_BACK = "rolled_back"
SPLIT_SET = "split_set"
CANARY_STEP = "canary_step"
SHADOW_STARTED = "shadow_started"
SHADOW_ENDED = "shadow_ended"
PREVIEW_STARTED = "preview_started"
EVENTS = (
    CREATED,
    DEPLOY_STARTED,
    SWITCHED,
    DEPLOY_FAILED,
    ROLLED_BACK,
    SPLIT_SET,
    CANARY_STEP,
    SHADOW_STARTED,
    SHADOW_ENDED,
    PREVIEW_STARTED,
)

ENVIRONMENT_TRANSITIONS: dict[tuple[str, str], str] = {
    (IDLE, DEPLOY_STARTED): DEPLOYING,
    (DEPLOYING, SWITCHED): IDLE,
    (DEPLOYING, DEPLOY_FAILED): IDLE,
    (IDLE, ROLLED_BACK): IDLE,
    (DEPLOYING, ROLLED_BACK): IDLE,
    (IDLE, SPLIT_SET): IDLE,
    (DEPLOYING, CANARY_STEP): ROLLING,
    (ROLLING, CANARY_STEP): ROLLING,
    (ROLLING, SWITCHED): IDLE,
    (ROLLING, ROLLED_BACK): IDLE,
    (DEPLOYING, SHADOW_STARTED): SHADOWING,
    (SHADOWING, SHADOW_ENDED): IDLE,
    (SHADOWING, ROLLED_BACK): IDLE,
    (DEPLOYING, PREVIEW_STARTED): PREVIEWING,
    (PREVIEWING, SWITCHED): IDLE,
    (PREVIEWING, ROLLED_BACK): IDLE,
}

PENDING = "pending"
WARMING = "warming"
SUCCEEDED = "succeeded"
FAILED = "failed"
PROGRESSING = "progressing"
PAUSED = "paused"
ROLLED_BACK_STATE = "rolled_back"
ABORTED = "aborted"
DEPLOYMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({WARMING, FAILED}),
    WARMING: frozenset({SUCCEEDED, FAILED, PROGRESSING}),
    PROGRESSING: frozenset({PAUSED, SUCCEEDED, ROLLED_BACK_STATE, ABORTED, FAILED}),
    PAUSED: frozenset({PROGRESSING, SUCCEEDED, ROLLED_BACK_STATE, ABORTED, FAILED}),
    SUCCEEDED: frozenset(),
    FAILED: frozenset(),
    ROLLED_BACK_STATE: frozenset(),
    ABORTED: frozenset(),
}
DEPLOYMENT_TERMINAL = frozenset({SUCCEEDED, FAILED, ROLLED_BACK_STATE, ABORTED})
DEPLOYMENT_LIVE = frozenset({PROGRESSING, PAUSED})  # a rollout exposing its candidate


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
    step: int = 0  # the canary's step (1-based while rolling)
    target: int | None = None  # the version a deployment in progress warms
    mode: str = SPLIT  # SHADOW: the candidate's answers are logged, never returned

    def as_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "stable": self.stable,
            "previous": self.previous,
            "candidate": self.candidate,
            "share": self.share,
            "step": self.step,
            "target": self.target,
            "mode": self.mode,
        }


def _next_phase(state: EnvironmentState, event: str) -> str:
    phase = ENVIRONMENT_TRANSITIONS.get((state.phase, event))
    if phase is None:
        if state.phase in BUSY_PHASES and event in (DEPLOY_STARTED, SPLIT_SET):
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
    if state.phase in (ROLLING, PREVIEWING) and state.candidate != version:
        raise TransitionRefused(
            "superseded", "The canary's candidate is another version.", version=version
        )
    return EnvironmentState(
        phase=phase,
        stable=version,
        previous=state.stable if state.stable != version else state.previous,
        candidate=None,
        share=0.0,
        step=0,
        target=None,
        mode=SPLIT,
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
    if state.candidate is not None or state.phase in (ROLLING, SHADOWING, PREVIEWING):
        return replace(
            state, phase=phase, candidate=None, share=0.0, step=0, target=None, mode=SPLIT
        )
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


def _share(share: float) -> float:
    if (
        isinstance(share, bool)
        or not isinstance(share, int | float)
        or not math.isfinite(share)
        or not 0 < share <= 1
    ):
        raise TransitionRefused("invalid", "The share is a number in (0, 1].", share=share)
    return float(share)


def canary_step(
    state: EnvironmentState, *, version: int, share: float, step: int
) -> EnvironmentState:
    """The canary ``version`` (the deployment's target) takes ``share`` of the requests."""
    phase = _next_phase(state, CANARY_STEP)
    if state.target != version:
        raise TransitionRefused(
            "superseded", "The environment no longer rolls out this version.", version=version
        )
    if state.stable is None:
        raise TransitionRefused(
            "no_stable_version", "A canary needs a stable version to compare with."
        )
    if share >= 1:
        raise TransitionRefused("invalid", "A canary step below 100 %; 100 % is a promotion.")
    return replace(
        state, phase=phase, candidate=version, share=_share(share), step=step, mode=SPLIT
    )


def shadow_started(state: EnvironmentState, *, version: int, share: float) -> EnvironmentState:
    """``version`` scores ``share`` of the requests beside the stable one; callers see stable."""
    phase = _next_phase(state, SHADOW_STARTED)
    if state.target != version:
        raise TransitionRefused(
            "superseded", "The environment no longer waits for this version.", version=version
        )
    if state.stable is None:
        raise TransitionRefused("no_stable_version", "A shadow needs a stable version.")
    return replace(state, phase=phase, candidate=version, share=_share(share), mode=SHADOW)


def preview_started(state: EnvironmentState, *, version: int) -> EnvironmentState:
    """Blue/green held: ``version`` is warm and answers only callers who ask for it by
    version (with the right); the share stays 0, so stable takes all the traffic."""
    phase = _next_phase(state, PREVIEW_STARTED)
    if state.target != version:
        raise TransitionRefused(
            "superseded", "The environment no longer waits for this version.", version=version
        )
    if state.stable is None:
        raise TransitionRefused(
            "no_stable_version", "A preview is held beside a stable version; there is none."
        )
    return replace(state, phase=phase, candidate=version, share=0.0, step=0, mode=PREVIEW)


def shadow_ended(state: EnvironmentState) -> EnvironmentState:
    phase = _next_phase(state, SHADOW_ENDED)
    return replace(state, phase=phase, candidate=None, share=0.0, step=0, target=None, mode=SPLIT)


# --- rollout plans ----------------------------------------------------------------

DEFAULT_STEPS = (5, 25, 50, 100)


def steps_valid(steps: Any) -> list[int]:
    """A canary's traffic steps in percent: increasing, each in (0, 100], ending at 100."""
    if not isinstance(steps, list | tuple) or not steps or len(steps) > 20:
        raise TransitionRefused(
            "invalid", "steps is a list of 1-20 percentages ending at 100.", steps=steps
        )
    clean: list[int] = []
    for value in steps:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 100:
            raise TransitionRefused(
                "invalid", "Each step is a whole percentage in 1..100.", steps=list(steps)
            )
        if clean and value <= clean[-1]:
            raise TransitionRefused("invalid", "The steps must increase.", steps=list(steps))
        clean.append(value)
    if clean[-1] != 100:
        raise TransitionRefused("invalid", "The last step must be 100.", steps=list(steps))
    return clean


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
