"""The A/B experiment strategy: a held split, judged by monitoring's A/B comparison on the
served traffic that labels joined, never promoted automatically; a person ends it by
promoting either side."""

from __future__ import annotations

import pytest
from django.test import Client

from common.errors import DomainError
from monitoring import selectors as monitoring_selectors
from tests.conftest import client_for
from tests.lifecycle.deploy_support import approve, environment, fresh, new_version, run_deployment
from tests.lifecycle.rollout_support import flipped_version, log_traffic
from tests.lifecycle.test_rollouts import (  # noqa: F401 - the fixture
    check,
    env,
    post_labels,
    rollouts_start,
)

pytestmark = pytest.mark.django_db
API = "/api/v1/models/churn/environments/production/deployments"


def ab(env, personas, version, **plan):  # noqa: F811
    plan.setdefault("step_seconds", 1)
    return run_deployment(rollouts_start(env, personas, version, "ab", plan))


def served_and_labelled(env, personas, candidate, n_stable, n_candidate):  # noqa: F811
    production = fresh(env["production"])
    log_traffic(production, env["v1"], n_stable, seed=70, prefix="a")
    log_traffic(production, candidate, n_candidate, seed=71, prefix="b")
    post_labels(env, personas, n_stable, seed=70, prefix="a")
    post_labels(env, personas, n_candidate, seed=71, prefix="b")


def test_an_ab_split_is_held_judged_by_monitorings_comparison_and_never_promoted(
    env,  # noqa: F811
    personas,
):
    worse = approve(flipped_version(env["model"], personas), personas)
    deployment = ab(env, personas, worse, share=0.5, end_after_labels=200)
    assert deployment.state == "progressing"
    production = fresh(env["production"])
    assert (production.phase, production.candidate_version, production.candidate_share) == (
        "rolling",
        worse,
        0.5,
    )
    assert not deployment.analyses.exists()  # an experiment replays nothing

    served_and_labelled(env, personas, worse, 120, 110)
    deployment = check(deployment)
    # 230 labelled requests >= 200: the experiment ends, the split stays, a person decides.
    assert deployment.state == "paused", deployment.reason
    assert deployment.reason.startswith("A/B experiment ended after 230 labelled requests")
    production = fresh(env["production"])
    assert (production.stable_version, production.candidate_version) == (env["v1"], worse)
    assert production.candidate_share == 0.5

    analysis = deployment.analyses.get()
    assert (analysis.kind, analysis.verdict, analysis.decision) == ("ab", "a", "end")
    figures = analysis.figures["comparison"]
    # The very comparison monitoring's A/B endpoint makes on the same served rows.
    same = monitoring_selectors.ab_comparison(
        user=personas.owner, model=env["model"], a="1", b=str(worse.number), metric="accuracy"
    )
    for key in ("n_a", "n_b", "value_a", "value_b", "difference", "p_value", "test", "winner"):
        assert figures[key] == pytest.approx(same[key]), key
    assert (figures["n_a"], figures["n_b"], figures["test"]) == (120, 110, "two_proportion_z")
    assert figures["winner"] == "a" and figures["p_value"] < 0.05
    assert figures["value_b"] < 0.5 < figures["value_a"]

    # A person ends it on stable's side: the candidate loses its traffic, stable stays.
    api = client_for(personas.owner)
    kept = api.post(
        f"{API}/{deployment.pk}/promote", {"version": 1, "reason": "A wins"}, format="json"
    )
    assert kept.status_code == 200, kept.content
    assert kept.json()["state"] == "aborted" and kept.json()["reason"] == "A wins"
    production = fresh(env["production"])
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        env["v1"],
        None,
    )
    assert production.automatic_rollbacks == 0  # a person's decision, not a rollback


def test_before_its_end_an_ab_waits_and_a_person_may_promote_the_candidate(
    env,  # noqa: F811
    personas,
):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = ab(env, personas, v2, share=0.3, end_after_labels=1000, metric="accuracy")
    served_and_labelled(env, personas, v2, 40, 20)
    deployment = check(deployment)
    assert deployment.state == "progressing" and deployment.next_check_at is not None
    analysis = deployment.analyses.get()
    assert (analysis.verdict, analysis.decision) == ("none", "wait")
    assert "at least 100 per version" in analysis.figures["comparison"]["verdict"]

    api = client_for(personas.owner)
    wrong = api.post(f"{API}/{deployment.pk}/promote", {"version": 9}, format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid"
    promoted = api.post(f"{API}/{deployment.pk}/promote", {"version": 2}, format="json")
    assert promoted.status_code == 200 and promoted.json()["state"] == "succeeded"
    assert fresh(env["production"]).stable_version == v2


def test_an_ab_ends_by_time_too_and_shows_on_the_deployments_panel(
    env,  # noqa: F811
    personas,
):
    worse = approve(flipped_version(env["model"], personas), personas)
    deployment = ab(env, personas, worse, share=0.5, duration_seconds=1)
    served_and_labelled(env, personas, worse, 110, 105)
    deployment = check(deployment)
    assert deployment.state == "paused"
    assert deployment.reason.startswith("A/B experiment ended after 1s: A is better on accuracy")

    client = Client()
    client.force_login(personas.owner)
    page = client.get("/models/churn/").content.decode()
    assert "A/B split 0.50 to v2" in page
    assert "accuracy: A (v1)" in page and "on 110 labelled, B (v2)" in page
    assert 'value="keep_stable"' in page and "Promote B (v2)" in page
    client.post(
        f"/models/churn/environments/production/deployments/{deployment.pk}/action/",
        {"action": "keep_stable"},
        HTTP_HX_REQUEST="true",
    )
    deployment.refresh_from_db()
    assert deployment.state == "aborted"
    assert fresh(env["production"]).candidate_version is None


def test_bad_ab_plans_are_refused_with_nothing_changed(env, personas):  # noqa: F811
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    for plan, field in (
        ({"share": 1.0}, "share"),
        ({"share": 0}, "share"),
        ({"end_after_labels": -3}, "end_after_labels"),
        ({"steps": [50, 100]}, "steps"),
        ({"metric": "nope"}, "metric"),
    ):
        with pytest.raises(DomainError) as refused:
            rollouts_start(env, personas, v2, "ab", plan)
        assert refused.value.code == "invalid" and field in refused.value.details, plan
    empty = environment(env["model"], name="staging")
    with pytest.raises(DomainError) as refused:
        from lifecycle import deployments

        deployments.deployment_start(
            actor=personas.owner, environment=empty, version=v2, strategy="ab", plan={}
        )
    assert refused.value.code == "no_stable_version"
    assert fresh(env["production"]).phase == "idle" and fresh(empty).phase == "idle"


def test_an_ab_that_names_no_metric_is_judged_on_the_retraining_policys_primary_metric(
    env,  # noqa: F811
    personas,
):
    """One precedence for a canary's steps and an A/B experiment: the plan's metric, else
    the retraining policy's primary metric, else the task's first (accuracy)."""
    from lifecycle import retraining

    retraining.retraining_policy_set(actor=personas.owner, model=env["model"], primary_metric="f1")
    worse = approve(flipped_version(env["model"], personas), personas)
    deployment = ab(env, personas, worse, share=0.5, end_after_labels=200)
    served_and_labelled(env, personas, worse, 120, 110)
    figures = check(deployment).analyses.get().figures["comparison"]
    assert figures["metric"] == "f1"
    same = monitoring_selectors.ab_comparison(
        user=personas.owner, model=env["model"], a="1", b=str(worse.number), metric="f1"
    )
    for key in ("n_a", "n_b", "value_a", "value_b", "difference", "p_value", "test", "winner"):
        assert figures[key] == pytest.approx(same[key]), key
    accuracy = monitoring_selectors.ab_comparison(
        user=personas.owner, model=env["model"], a="1", b=str(worse.number), metric="accuracy"
    )
    assert figures["value_a"] != pytest.approx(accuracy["value_a"])  # not the task's first
