"""Lifecycle state tables and the decisions made on them (pure: no Django).

Each section is one aggregate's table; its one writer (a private function in
the aggregate's service module) checks it before every change.
"""

from __future__ import annotations

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
