"""Rollouts in-process: the controller's decisions on logged traffic, people's actions,
replay, shadow, freeze, the API and its refusals."""

from __future__ import annotations

import pytest

from common.errors import DomainError
from common.models import AuditEvent
from lifecycle import rollouts
from lifecycle.models import Deployment, EnvironmentTransition, RolloutAnalysis
from tests.conftest import client_for
from tests.lifecycle.deploy_support import (
    approve,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
    run_deployment,
)
from tests.lifecycle.rollout_support import (
    flipped_version,
    log_traffic,
    shifted_version,
    wait_until_due,
)

pytestmark = pytest.mark.django_db
API = "/api/v1/models/churn/environments"


@pytest.fixture
def env(personas, settings):
    settings.ROLLOUT_INCONCLUSIVE_LIMIT = 2
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    return {"model": model, "v1": v1, "production": fresh(production)}


def canary(env, personas, version, **plan):
    plan.setdefault("steps", [20, 50, 100])
    plan.setdefault("step_seconds", 1)
    deployment = rollouts_start(env, personas, version, "canary", plan)
    return run_deployment(deployment)


def rollouts_start(env, personas, version, strategy, plan):
    from lifecycle import deployments

    return deployments.deployment_start(
        actor=personas.owner,
        environment=fresh(env["production"]),
        version=version,
        strategy=strategy,
        plan=plan,
    )


def check(deployment):
    wait_until_due(deployment)
    assert rollouts.rollout_check(deployment_id=deployment.pk)
    deployment.refresh_from_db()
    return deployment


def test_a_healthy_canary_steps_through_and_promotes_itself(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    log_traffic(env["production"], env["v1"], 60, prefix="before")  # what replay replays
    deployment = canary(env, personas, v2)
    assert deployment.state == "progressing" and deployment.step_index == 1
    production = fresh(env["production"])
    assert (production.phase, production.candidate_version, production.candidate_share) == (
        "rolling",
        v2,
        0.2,
    )
    replay = RolloutAnalysis.objects.get(deployment=deployment, kind="replay")
    assert replay.verdict == "pass" and replay.figures["rows"] == 60
    assert replay.figures["checks"]["disagreement"]["rate"] < 0.2

    log_traffic(production, env["v1"], 80, seed=2, prefix="s1")
    log_traffic(production, v2, 40, seed=3, prefix="c1")
    deployment = check(deployment)
    assert deployment.step_index == 2 and fresh(env["production"]).candidate_share == 0.5

    log_traffic(production, env["v1"], 50, seed=4, prefix="s2")
    log_traffic(production, v2, 50, seed=5, prefix="c2")
    deployment = check(deployment)
    assert deployment.state == "succeeded" and deployment.switched_at is not None
    production = fresh(env["production"])
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        v2,
        None,
    )
    steps = list(
        RolloutAnalysis.objects.filter(deployment=deployment, kind="step").values_list(
            "step_index", "verdict", "decision"
        )
    )
    assert steps == [(1, "pass", "advance"), (2, "pass", "promote")]
    events = list(
        EnvironmentTransition.objects.filter(deployment=deployment)
        .order_by("id")
        .values_list("event", "reason")
    )
    assert [e for e, _ in events] == ["deploy_started", "canary_step", "canary_step", "switched"]
    assert all(reason for event, reason in events[1:]), events  # each step says why
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("lifecycle.deployment.analysed") == 2
    assert "lifecycle.deployment.replayed" in actions
    assert "lifecycle.deployment.succeeded" in actions


def test_a_candidate_with_shifted_predictions_is_rolled_back_on_psi_with_perfect_health(
    env, personas
):
    bad = approve(shifted_version(env["model"], personas), personas)
    deployment = canary(env, personas, bad)  # nothing logged yet: replay is inconclusive
    replay = RolloutAnalysis.objects.get(deployment=deployment, kind="replay")
    assert replay.verdict == "inconclusive" and deployment.state == "progressing"
    production = fresh(env["production"])
    for round_ in range(2):  # failure limit 2 for prediction drift
        log_traffic(production, env["v1"], 80, seed=10 + round_, prefix=f"s{round_}")
        log_traffic(production, bad, 40, seed=20 + round_, prefix=f"c{round_}")
        deployment = check(deployment)
    assert deployment.state == "rolled_back", deployment.reason
    assert deployment.reason.startswith("automatic rollback: prediction PSI")
    last = RolloutAnalysis.objects.filter(deployment=deployment).last()
    assert last.decision == "rollback"
    assert last.figures["checks"]["error_rate"]["verdict"] == "pass"
    assert last.figures["checks"]["prediction_psi"]["psi"] > 0.2
    production = fresh(env["production"])
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        env["v1"],
        None,
    )
    assert production.automatic_rollbacks == 1


def test_a_candidate_that_errors_is_rolled_back_after_one_failed_analysis(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = canary(env, personas, v2)
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 80, seed=1, prefix="s")
    log_traffic(production, v2, 40, seed=2, errors=5, prefix="c")
    deployment = check(deployment)
    assert deployment.state == "rolled_back"
    assert "error rate" in deployment.reason


def test_a_candidate_that_fails_replay_never_receives_traffic(env, personas):
    bad = approve(flipped_version(env["model"], personas), personas)
    log_traffic(env["production"], env["v1"], 60)
    deployment = canary(env, personas, bad)
    assert deployment.state == "failed"
    assert deployment.reason.startswith("replay failed: ")
    assert "no caller saw the candidate" in deployment.reason
    assert not EnvironmentTransition.objects.filter(event="canary_step").exists()
    replay = RolloutAnalysis.objects.get(deployment=deployment)
    assert replay.figures["checks"]["disagreement"]["rate"] > 0.5
    assert fresh(env["production"]).phase == "idle"


def test_too_little_traffic_pauses_the_canary_for_a_person_who_resumes_or_promotes(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = canary(env, personas, v2)
    deployment = check(deployment)  # no traffic at all: inconclusive
    assert deployment.state == "progressing" and deployment.inconclusive_in_row == 1
    deployment = check(deployment)
    assert deployment.state == "paused" and "inconclusive" in deployment.reason
    assert deployment.next_check_at is None
    assert fresh(env["production"]).candidate_share == 0.2  # the split stays
    rollouts.deployment_resume(actor=personas.owner, deployment=deployment)
    deployment.refresh_from_db()
    assert deployment.state == "progressing" and deployment.inconclusive_in_row == 0
    rollouts.deployment_promote(actor=personas.owner, deployment=deployment, reason="looks fine")
    deployment.refresh_from_db()
    assert deployment.state == "succeeded"
    assert fresh(env["production"]).stable_version == v2


def test_people_abort_and_cannot_promote_what_was_aborted(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = canary(env, personas, v2)
    api = client_for(personas.owner)
    base = f"{API}/production/deployments/{deployment.pk}"
    assert client_for(personas.viewer).post(f"{base}/abort", {}).status_code == 403
    assert client_for(personas.outsider).post(f"{base}/abort", {}).status_code == 404
    aborted = api.post(f"{base}/abort", {"reason": "not today"}, format="json")
    assert aborted.status_code == 200, aborted.content
    assert aborted.json()["state"] == "aborted" and aborted.json()["reason"] == "not today"
    production = fresh(env["production"])
    assert production.candidate_version is None and production.phase == "idle"
    assert production.automatic_rollbacks == 0  # a person's abort is not automatic
    before = AuditEvent.objects.count()
    promoted = api.post(f"{base}/promote", {}, format="json")
    assert promoted.status_code == 409
    assert promoted.json()["error"]["code"] == "invalid_transition"
    assert AuditEvent.objects.count() == before
    assert fresh(env["production"]).stable_version == env["v1"]


def test_a_second_rollout_while_one_is_in_progress_is_a_409_and_changes_nothing(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    v3 = approve(new_version(env["model"], personas, seed=2), personas)
    canary(env, personas, v2)
    response = client_for(personas.owner).post(
        f"{API}/production/deployments/",
        {"version": v3.number, "strategy": "canary"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "deployment_in_progress"
    assert Deployment.objects.filter(version=v3).count() == 0


def test_a_shadow_on_an_environment_without_traffic_is_refused(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    response = client_for(personas.owner).post(
        f"{API}/production/deployments/",
        {"version": v2.number, "strategy": "shadow"},
        format="json",
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "no_traffic"
    assert not Deployment.objects.filter(version=v2).exists()


def test_a_shadow_scores_beside_stable_and_ends_by_itself_with_its_agreement(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    log_traffic(env["production"], env["v1"], 10, prefix="old")
    response = client_for(personas.owner).post(
        f"{API}/production/deployments/",
        {"version": v2.number, "strategy": "shadow", "shadow_share": 1.0, "duration_seconds": 1},
        format="json",
    )
    assert response.status_code == 202, response.content
    deployment = run_deployment(Deployment.objects.get(pk=response.json()["id"]))
    production = fresh(env["production"])
    assert (production.phase, production.candidate_mode) == ("shadowing", "shadow")
    log_traffic(production, env["v1"], 50, seed=7, prefix="req")
    log_traffic(production, v2, 50, seed=7, prefix="req", shadow=True)  # the same requests
    deployment = check(deployment)
    assert deployment.state == "succeeded", deployment.reason
    analysis = RolloutAnalysis.objects.get(deployment=deployment, kind="shadow")
    assert analysis.figures["checks"]["disagreement"]["rows"] == 50
    production = fresh(env["production"])
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        env["v1"],
        None,
    )


def test_three_automatic_rollbacks_in_a_row_freeze_the_environment(env, personas, settings):
    settings.ROLLOUT_FREEZE_AFTER = 3
    for i in range(3):
        v = approve(new_version(env["model"], personas, seed=i + 1), personas)
        deployment = canary(env, personas, v)
        production = fresh(env["production"])
        log_traffic(production, env["v1"], 40, seed=30 + i, prefix=f"s{i}")
        log_traffic(production, v, 40, seed=40 + i, errors=10, prefix=f"c{i}")
        assert check(deployment).state == "rolled_back"
    production = fresh(env["production"])
    assert production.frozen and production.automatic_rollbacks == 3
    v5 = approve(new_version(env["model"], personas, seed=9), personas)
    with pytest.raises(DomainError) as refused:
        canary(env, personas, v5)
    assert refused.value.code == "environment_frozen"
    api = client_for(personas.owner)
    lifted = api.post(f"{API}/production/unfreeze", {"reason": "fixed"}, format="json")
    assert lifted.status_code == 200 and lifted.json()["frozen"] is False
    assert canary(env, personas, v5).state == "progressing"


def test_the_deployment_api_shows_the_step_share_and_analyses(env, personas):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = canary(env, personas, v2, thresholds={"prediction_psi": 0.3})
    body = client_for(personas.viewer).get(f"{API}/production/deployments/{deployment.pk}/").json()
    assert body["strategy"] == "canary" and body["steps"] == [20, 50, 100]
    assert body["step_index"] == 1 and body["current_share"] == 0.2
    assert body["thresholds"]["prediction_psi"] == 0.3
    assert body["analyses"][0]["kind"] == "replay"


def post_labels(env, personas, n, *, seed, prefix):
    import pyarrow as pa

    from monitoring.services import label_batch_ingest
    from tests.conftest import training_frame

    frame = training_frame(n, seed=seed)
    table = pa.table(
        {
            "request_id": [f"{prefix}-{seed}-{i}" for i in range(n)],
            "label": frame["label"].tolist(),
        }
    )
    label_batch_ingest(
        actor=personas.bot, model=env["model"], batch_id=f"labels-{prefix}-{seed}", table=table
    )


def test_a_candidate_worse_on_the_labels_that_arrived_is_rolled_back_on_its_metric(env, personas):
    bad = approve(flipped_version(env["model"], personas), personas)
    deployment = canary(env, personas, bad)  # no logged traffic: replay inconclusive
    production = fresh(env["production"])
    for round_ in range(2):
        log_traffic(production, env["v1"], 80, seed=50 + round_, prefix=f"s{round_}")
        log_traffic(production, bad, 60, seed=60 + round_, prefix=f"c{round_}")
        post_labels(env, personas, 80, seed=50 + round_, prefix=f"s{round_}")
        post_labels(env, personas, 60, seed=60 + round_, prefix=f"c{round_}")
        deployment = check(deployment)
    assert deployment.state == "rolled_back", deployment.reason
    assert "accuracy" in deployment.reason
    steps = RolloutAnalysis.objects.filter(deployment=deployment, kind="step")
    metric = [a.figures["checks"]["metric"] for a in steps]
    assert [m["verdict"] for m in metric] == ["fail", "fail"]
    assert all(m["stable_labelled"] == 80 and m["candidate_labelled"] == 60 for m in metric)
    assert all(m["candidate"] < 0.5 < m["stable"] for m in metric)


def test_a_refusal_at_promotion_fails_the_rollout_with_its_reason_never_due_forever(
    env, personas, monkeypatch
):
    from common.errors import conflict

    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = canary(env, personas, v2, steps=[50, 100])
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 60, seed=1, prefix="s")
    log_traffic(production, v2, 60, seed=2, prefix="c")

    def refuse(*args, **kwargs):  # what the gate says when the approval expired meanwhile
        raise conflict("approval_expired", "churn v2's approval expired.")

    monkeypatch.setattr(rollouts, "_promote", refuse)
    wait_until_due(deployment)
    assert rollouts.rollout_sweep() == 1
    deployment.refresh_from_db()
    assert deployment.state == "failed" and "approval expired" in deployment.reason
    assert deployment.next_check_at is None
    production = fresh(env["production"])
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        env["v1"],
        None,
    )
