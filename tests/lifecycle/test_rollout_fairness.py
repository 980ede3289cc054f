"""The fairness gap in a rollout's analysis, through the controller: a canary whose
candidate treats one group worse on the labelled requests is rolled back after the
failure limit; a replay and a shadow judge the gap on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from lifecycle import retraining, serving
from lifecycle.models import EnvironmentTransition, RolloutAnalysis
from monitoring.models import Alert
from tests.lifecycle.deploy_support import (
    approve,
    deploy,
    environment,
    fresh,
    low_risk_model,
)
from tests.lifecycle.rollout_support import (
    SEX_FEATURES,
    served_and_labelled,
    sex_version,
    start,
    three,
    wait_until_due,
)
from tests.lifecycle.test_rollouts import check

pytestmark = pytest.mark.django_db

# The other quality checks opened, so that the fairness gap alone judges: an unfair
# candidate also shifts its predictions and loses accuracy.
ONLY_FAIRNESS = {"prediction_psi": 100.0, "metric_drop": 1.0, "disagreement": 1.0}


@pytest.fixture
def env(personas, settings):
    settings.ROLLOUT_INCONCLUSIVE_LIMIT = 2
    model = low_risk_model(personas)
    # Where a model's sensitive features are named: its retraining policy (and its
    # fairness audits').
    retraining.retraining_policy_set(actor=personas.owner, model=model, sensitive_columns=["sex"])
    v1 = approve(sex_version(model, personas), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    return {"model": model, "v1": v1, "production": fresh(production)}


def fairlearn_gaps(version, frame):
    """fairlearn's gaps of ``version``'s answers on the rows of ``frame``."""
    loaded = serving.load_version(version.pk)
    predicted = np.asarray(loaded.estimator.predict(frame[SEX_FEATURES]))
    return {
        "demographic_parity_difference": demographic_parity_difference(
            frame["label"], predicted, sensitive_features=frame["sex"]
        ),
        "equalized_odds_difference": equalized_odds_difference(
            frame["label"], predicted, sensitive_features=frame["sex"]
        ),
    }


def test_an_unfair_canary_fails_on_its_fairness_gap_and_is_rolled_back_after_the_limit(
    env, personas
):
    unfair = approve(sex_version(env["model"], personas, unfair=True), personas)
    deployment = start(
        env,
        personas,
        unfair,
        "canary",
        steps=[20, 50, 100],
        step_seconds=1,
        thresholds=ONLY_FAIRNESS,
    )  # nothing logged yet: the replay is inconclusive, the canary takes its first step
    assert deployment.state == "progressing" and deployment.step_index == 1
    production = fresh(env["production"])
    frames = []
    for round_ in range(2):  # failure limit 2 for fairness
        served_and_labelled(
            production,
            env["v1"],
            env["model"],
            personas.bot,
            80,
            seed=10 + round_,
            prefix=f"s{round_}",
        )
        frames.append(
            served_and_labelled(
                production,
                unfair,
                env["model"],
                personas.bot,
                60,
                seed=20 + round_,
                prefix=f"c{round_}",
            )
        )
        deployment = check(deployment)
        if round_ == 0:
            assert deployment.state == "progressing" and deployment.failures == {"fairness": 1}
    assert deployment.state == "rolled_back", deployment.reason
    assert deployment.reason.startswith("automatic rollback: fairness ")
    steps = list(RolloutAnalysis.objects.filter(deployment=deployment, kind="step"))
    assert [(a.verdict, a.decision) for a in steps] == [("fail", "wait"), ("fail", "rollback")]
    for analysis, frame in zip(steps, frames, strict=True):
        fairness = analysis.figures["checks"]["fairness"]
        assert fairness["verdict"] == "fail" and fairness["sensitive_features"] == ["sex"]
        assert (fairness["stable_labelled"], fairness["candidate_labelled"]) == (80, 60)
        expected = fairlearn_gaps(unfair, frame)  # the candidate on its own requests
        for name, value in expected.items():
            assert fairness["gaps"][name]["candidate"] == pytest.approx(value)
        assert fairness["increase"] > fairness["limit"] == 0.1
        groups = {g["group"] for g in fairness["groups"]["candidate"]["sex"]}
        assert groups == {"sex=0", "sex=1"}
        assert ra_failed(analysis) == ["fairness"]  # the gap alone decided
    production = fresh(env["production"])
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        env["v1"],
        None,
    )
    alert = Alert.objects.get(kind="rollback")
    assert alert.details["failed_checks"] == ["fairness"]
    # The deployments panel shows each step's gap, candidate against stable.
    client = Client()
    client.force_login(personas.viewer)
    page = client.get("/models/churn/").content.decode()
    table = page.split(f'id="deployment-{deployment.pk}"')[1].split('class="rollout-analyses"')[1]
    table = table.split("</table>")[0]
    assert "<th>Fairness gap (cand./stable)</th>" in table
    last = steps[-1].figures["checks"]["fairness"]
    assert (
        f"{last['metric']} {three(last['candidate'])} / {three(last['stable'])} by sex" in table
    ), table


def ra_failed(analysis):
    from lifecycle import rollout_analysis as ra

    return ra.failed_checks(analysis.figures)


def test_an_unfair_candidate_fails_replay_on_the_labelled_logged_requests(env, personas):
    frame = served_and_labelled(
        env["production"], env["v1"], env["model"], personas.bot, 120, seed=3, prefix="before"
    )
    unfair = approve(sex_version(env["model"], personas, unfair=True), personas)
    deployment = start(env, personas, unfair, "canary", thresholds=ONLY_FAIRNESS)
    assert deployment.state == "failed", deployment.reason
    assert deployment.reason.startswith("replay failed: fairness ")
    assert not EnvironmentTransition.objects.filter(event="canary_step").exists()
    replay = RolloutAnalysis.objects.get(deployment=deployment, kind="replay")
    fairness = replay.figures["checks"]["fairness"]
    assert fairness["verdict"] == "fail"
    # the same rows: stable's logged answers, the candidate's on the same requests
    assert fairness["stable_labelled"] == fairness["candidate_labelled"] == 120
    for name, value in fairlearn_gaps(unfair, frame).items():
        assert fairness["gaps"][name]["candidate"] == pytest.approx(value)
    for name, value in fairlearn_gaps(env["v1"], frame).items():
        assert fairness["gaps"][name]["stable"] == pytest.approx(value)


def test_a_fair_candidate_passes_the_fairness_check_at_a_canary_step(env, personas):
    fair = approve(sex_version(env["model"], personas), personas)
    deployment = start(env, personas, fair, "canary", steps=[50, 100], step_seconds=1)
    production = fresh(env["production"])
    served_and_labelled(production, env["v1"], env["model"], personas.bot, 60, seed=1, prefix="s")
    served_and_labelled(production, fair, env["model"], personas.bot, 60, seed=2, prefix="c")
    deployment = check(deployment)
    assert deployment.state == "succeeded", deployment.reason
    step = RolloutAnalysis.objects.get(deployment=deployment, kind="step")
    assert step.figures["checks"]["fairness"]["verdict"] == "pass"


def test_a_shadow_judges_the_gap_on_the_requests_both_answered(env, personas):
    served_and_labelled(
        env["production"], env["v1"], env["model"], personas.bot, 5, seed=0, prefix="old"
    )
    unfair = approve(sex_version(env["model"], personas, unfair=True), personas)
    deployment = start(
        env, personas, unfair, "shadow", duration_seconds=1, thresholds=ONLY_FAIRNESS
    )
    production = fresh(env["production"])
    assert production.phase == "shadowing"
    frame = served_and_labelled(
        production, env["v1"], env["model"], personas.bot, 80, seed=7, prefix="req"
    )
    from tests.lifecycle.rollout_support import log_traffic

    log_traffic(production, unfair, 80, seed=7, prefix="req", shadow=True, frame=frame)
    wait_until_due(deployment)
    deployment = check(deployment)
    assert deployment.state == "rolled_back", deployment.reason
    assert "fairness" in deployment.reason
    shadow = RolloutAnalysis.objects.get(deployment=deployment, kind="shadow")
    fairness = shadow.figures["checks"]["fairness"]
    assert fairness["stable_labelled"] == fairness["candidate_labelled"] == 80
    for name, value in fairlearn_gaps(unfair, frame).items():
        assert fairness["gaps"][name]["candidate"] == pytest.approx(value)
    assert fresh(env["production"]).stable_version == env["v1"]


def test_without_sensitive_features_the_fairness_check_is_skipped_and_says_so(personas):
    model = low_risk_model(personas, name="plain")
    v1 = approve(sex_version(model, personas), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    env = {"model": model, "v1": v1, "production": fresh(production)}
    v2 = approve(sex_version(model, personas, unfair=True), personas)
    deployment = start(
        env, personas, v2, "canary", steps=[50, 100], step_seconds=1, thresholds=ONLY_FAIRNESS
    )
    served_and_labelled(env["production"], v1, model, personas.bot, 40, seed=1, prefix="s")
    served_and_labelled(env["production"], v2, model, personas.bot, 40, seed=2, prefix="c")
    deployment = check(deployment)
    step = RolloutAnalysis.objects.get(deployment=deployment, kind="step")
    fairness = step.figures["checks"]["fairness"]
    assert fairness == {"verdict": "skipped", "reason": "the model has no sensitive features"}


def test_the_api_takes_the_fairness_thresholds_by_name_and_refuses_unknown_ones(env, personas):
    from lifecycle.models import Deployment
    from tests.conftest import client_for

    v2 = approve(sex_version(env["model"], personas), personas)
    api = client_for(personas.owner)
    url = "/api/v1/models/churn/environments/production/deployments/"
    refused = api.post(
        url,
        {"version": v2.number, "strategy": "canary", "thresholds": {"fairness_gap": 0.05}},
        format="json",
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"]["code"] == "invalid"
    assert "fairness_gap" in refused.json()["error"]["message"]
    assert not Deployment.objects.filter(version=v2).exists()
    taken = api.post(
        url,
        {
            "version": v2.number,
            "strategy": "canary",
            "thresholds": {"fairness_gap_increase": 0.05, "fairness_min_group": 20},
        },
        format="json",
    )
    assert taken.status_code == 202, taken.content
    thresholds = Deployment.objects.get(version=v2).thresholds
    assert (thresholds["fairness_gap_increase"], thresholds["fairness_min_group"]) == (0.05, 20)
