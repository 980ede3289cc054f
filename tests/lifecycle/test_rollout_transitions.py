"""Rollout transitions (pure): the environment's phases and the deployment's states."""

from __future__ import annotations

import pytest

from lifecycle import transitions as t

STABLE = t.EnvironmentState(stable=1, previous=None)


def deploying(version: int = 2) -> t.EnvironmentState:
    return t.deploy_started(STABLE, version=version)


def test_a_canary_steps_then_promotes_or_rolls_back_to_stable():
    rolling = t.canary_step(deploying(), version=2, share=0.05, step=1)
    assert (rolling.phase, rolling.candidate, rolling.share, rolling.step) == (
        "rolling",
        2,
        0.05,
        1,
    )
    rolling = t.canary_step(rolling, version=2, share=0.5, step=3)
    promoted = t.switched(rolling, version=2)
    assert (promoted.phase, promoted.stable, promoted.previous, promoted.candidate) == (
        "idle",
        2,
        1,
        None,
    )
    back = t.rolled_back(rolling, earlier=None)
    assert (back.phase, back.stable, back.candidate, back.share, back.target) == (
        "idle",
        1,
        None,
        0.0,
        None,
    )


def test_a_shadow_never_changes_who_answers():
    shadowing = t.shadow_started(deploying(), version=2, share=0.5)
    assert (shadowing.phase, shadowing.mode, shadowing.stable) == ("shadowing", "shadow", 1)
    ended = t.shadow_ended(shadowing)
    assert (ended.phase, ended.candidate, ended.mode, ended.stable) == ("idle", None, "split", 1)


@pytest.mark.parametrize(
    ("state", "move", "code"),
    [
        # a second rollout while one is in progress
        (
            lambda: t.canary_step(deploying(), version=2, share=0.1, step=1),
            lambda s: t.deploy_started(s, version=3),
            "deployment_in_progress",
        ),
        (
            lambda: t.shadow_started(deploying(), version=2, share=1.0),
            lambda s: t.deploy_started(s, version=3),
            "deployment_in_progress",
        ),
        # a shadow is never promoted, a canary step never from idle
        (
            lambda: t.shadow_started(deploying(), version=2, share=1.0),
            lambda s: t.switched(s, version=2),
            "invalid_transition",
        ),
        (
            lambda: STABLE,
            lambda s: t.canary_step(s, version=2, share=0.1, step=1),
            "invalid_transition",
        ),
        (lambda: STABLE, lambda s: t.shadow_ended(s), "invalid_transition"),
        # a canary step of 100 % is a promotion, not a step; a step of another version
        (deploying, lambda s: t.canary_step(s, version=2, share=1.0, step=1), "invalid"),
        (deploying, lambda s: t.canary_step(s, version=3, share=0.1, step=1), "superseded"),
        (deploying, lambda s: t.shadow_started(s, version=2, share=0.0), "invalid"),
    ],
)
def test_illegal_rollout_moves_are_refused(state, move, code):
    with pytest.raises(t.TransitionRefused) as refused:
        move(state())
    assert refused.value.code == code


def test_a_canary_needs_a_stable_version():
    with pytest.raises(t.TransitionRefused) as refused:
        t.canary_step(
            t.deploy_started(t.EnvironmentState(), version=2), version=2, share=0.1, step=1
        )
    assert refused.value.code == "no_stable_version"


@pytest.mark.parametrize(
    "steps", [[], [5, 25, 50], [25, 5, 100], [5, 5, 100], [0, 100], [5, 101], [5.5, 100], "5,100"]
)
def test_steps_that_do_not_increase_to_100_are_refused(steps):
    with pytest.raises(t.TransitionRefused):
        t.steps_valid(steps)


def test_default_steps_are_valid():
    assert t.steps_valid(list(t.DEFAULT_STEPS)) == [5, 25, 50, 100]


@pytest.mark.parametrize(
    ("current", "to"),
    [
        ("aborted", "succeeded"),  # promoting an aborted deployment
        ("rolled_back", "progressing"),
        ("succeeded", "paused"),
        ("pending", "progressing"),
        ("paused", "paused"),
    ],
)
def test_illegal_deployment_state_changes_are_refused(current, to):
    with pytest.raises(t.TransitionRefused):
        t.deployment_next(current, to)


def test_a_blue_green_preview_holds_the_candidate_without_traffic_then_switches_or_goes():
    previewing = t.preview_started(deploying(), version=2)
    assert (previewing.phase, previewing.candidate, previewing.share, previewing.mode) == (
        "previewing",
        2,
        0.0,
        "preview",
    )
    switched = t.switched(previewing, version=2)
    assert (switched.phase, switched.stable, switched.previous, switched.mode) == (
        "idle",
        2,
        1,
        "split",
    )
    back = t.rolled_back(previewing, earlier=None)
    assert (back.phase, back.stable, back.candidate, back.mode) == ("idle", 1, None, "split")
    with pytest.raises(t.TransitionRefused) as busy:
        t.deploy_started(previewing, version=3)
    assert busy.value.code == "deployment_in_progress"
    with pytest.raises(t.TransitionRefused) as other:
        t.switched(previewing, version=3)
    assert other.value.code == "superseded"
    with pytest.raises(t.TransitionRefused) as no_stable:
        t.preview_started(t.deploy_started(t.EnvironmentState(), version=2), version=2)
    assert no_stable.value.code == "no_stable_version"
