"""The replay's metric check: before a canary or a blue/green sends the candidate any
live traffic, its metric on the logged requests that labels have joined is judged against
what stable answered on the same rows; a failure stops the deployment."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client
from sklearn.metrics import accuracy_score, recall_score

from lifecycle import retraining, serving
from lifecycle.models import EnvironmentTransition, RolloutAnalysis
from tests.conftest import FEATURES, training_frame
from tests.lifecycle.deploy_support import (
    approve,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
)
from tests.lifecycle.rollout_support import (
    flipped_version,
    log_traffic,
    post_labels,
    start,
    three,
)

pytestmark = pytest.mark.django_db

# Disagreement and prediction drift opened, so that the metric alone judges the replay.
ONLY_METRIC = {"disagreement": 1.0, "prediction_psi": 100.0}


@pytest.fixture
def env(personas):
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    return {"model": model, "v1": v1, "production": fresh(production)}


def logged_and_labelled(env, personas, n=80, seed=0, labelled=None):
    """``n`` requests answered by stable and logged; labels for the first ``labelled``."""
    log_traffic(env["production"], env["v1"], n, seed=seed, prefix="before")
    frame = training_frame(n, seed=seed)
    k = n if labelled is None else labelled
    post_labels(
        env["model"],
        personas.bot,
        [f"before-{seed}-{i}" for i in range(k)],
        frame["label"][:k].tolist(),
        f"before-{seed}",
    )
    return frame.iloc[:k]


def predicted(version, frame):
    return np.asarray(serving.load_version(version.pk).estimator.predict(frame[FEATURES]))


@pytest.mark.parametrize("strategy", ["canary", "blue_green"])
def test_a_candidate_worse_on_the_labelled_replay_is_stopped_before_any_traffic(
    env, personas, strategy
):
    frame = logged_and_labelled(env, personas)
    worse = approve(flipped_version(env["model"], personas), personas)
    deployment = start(env, personas, worse, strategy, thresholds=ONLY_METRIC)
    assert deployment.state == "failed", deployment.reason
    assert deployment.reason.startswith("replay failed: accuracy ")
    assert "no caller saw the candidate" in deployment.reason
    replay = RolloutAnalysis.objects.get(deployment=deployment, kind="replay")
    metric = replay.figures["checks"]["metric"]
    assert metric["verdict"] == "fail" and metric["metric"] == "accuracy"
    assert metric["stable_labelled"] == metric["candidate_labelled"] == 80
    # stable: what it answered the callers; the candidate: its answers on the same rows
    assert metric["stable"] == pytest.approx(
        accuracy_score(frame["label"], predicted(env["v1"], frame))
    )
    assert metric["candidate"] == pytest.approx(
        accuracy_score(frame["label"], predicted(worse, frame))
    )
    assert metric["drop"] == pytest.approx(metric["stable"] - metric["candidate"])
    assert metric["drop"] > metric["limit"] == 0.05
    assert replay.decision == "stop"
    if strategy == "canary":  # the panel shows the replay's metric, candidate against stable
        client = Client()
        client.force_login(personas.viewer)
        page = client.get("/models/churn/").content.decode()
        table = page.split(f'id="deployment-{deployment.pk}"')[1].split("</table>")[0]
        shown = f"accuracy {three(metric['candidate'])} / {three(metric['stable'])} (drop "
        assert shown in table, table
    assert not EnvironmentTransition.objects.filter(
        deployment=deployment, event__in=("canary_step", "switched", "preview_started")
    ).exists()
    production = fresh(env["production"])
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        env["v1"],
        None,
    )


def test_a_candidate_as_good_on_the_labelled_replay_goes_on_to_its_first_step(env, personas):
    frame = logged_and_labelled(env, personas, labelled=50)  # labels for 50 of the 80
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = start(env, personas, v2, "canary", steps=[20, 100], step_seconds=60)
    assert deployment.state == "progressing" and deployment.step_index == 1
    replay = RolloutAnalysis.objects.get(deployment=deployment, kind="replay")
    assert replay.verdict == "pass" and replay.figures["rows"] == 80
    metric = replay.figures["checks"]["metric"]
    assert metric["verdict"] == "pass" and metric["stable_labelled"] == 50
    assert metric["candidate"] == pytest.approx(
        accuracy_score(frame["label"], predicted(v2, frame))
    )
    # no sensitive features on this model: said, not judged
    assert replay.figures["checks"]["fairness"]["verdict"] == "skipped"
    assert fresh(env["production"]).candidate_share == 0.2


def test_too_few_labels_on_the_replay_skip_the_metric_and_the_replay_goes_on(env, personas):
    logged_and_labelled(env, personas, labelled=10)
    worse = approve(flipped_version(env["model"], personas), personas)
    deployment = start(env, personas, worse, "canary", thresholds=ONLY_METRIC)
    assert deployment.state == "progressing", deployment.reason
    metric = RolloutAnalysis.objects.get(deployment=deployment, kind="replay").figures["checks"][
        "metric"
    ]
    assert metric["verdict"] == "skipped" and metric["stable_labelled"] == 10


def test_the_replay_judges_the_plans_metric_else_the_policys_primary_metric(env, personas):
    from lifecycle import rollouts

    frame = logged_and_labelled(env, personas)
    retraining.retraining_policy_set(actor=personas.owner, model=env["model"], primary_metric="f1")
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    canary = start(env, personas, v2, "canary", metric="recall", thresholds=ONLY_METRIC)
    metric = RolloutAnalysis.objects.get(deployment=canary, kind="replay").figures["checks"][
        "metric"
    ]
    assert metric["metric"] == "recall"  # the plan's
    assert metric["candidate"] == pytest.approx(recall_score(frame["label"], predicted(v2, frame)))
    rollouts.deployment_abort(actor=personas.owner, deployment=canary)
    blue_green = start(env, personas, v2, "blue_green", thresholds=ONLY_METRIC)
    replay = RolloutAnalysis.objects.get(deployment=blue_green, kind="replay")
    assert replay.figures["checks"]["metric"]["metric"] == "f1"  # the policy's primary metric
    assert blue_green.state == "succeeded"


def test_a_pipeline_served_through_its_column_plan_is_really_scored_by_the_replay(env, personas):
    # The replay scores through the serving process's own call (typed columns): a
    # pipeline that begins with a ColumnTransformer is run through its column plan,
    # which takes those columns, not a frame. Every row predicted, none "failed".
    from tests.lifecycle.rollout_support import planned_version

    frame = logged_and_labelled(env, personas)
    planned = approve(planned_version(env["model"], personas), personas)
    assert serving.load_version(planned.pk).plan is not None
    deployment = start(
        env, personas, planned, "canary", steps=[20, 100], step_seconds=60, thresholds=ONLY_METRIC
    )  # (its scaled features give other probabilities than v1's: not what is tested here)
    replay = RolloutAnalysis.objects.get(deployment=deployment, kind="replay")
    checks = replay.figures["checks"]
    assert checks["error_rate"]["candidate_errors"] == 0, checks["error_rate"]
    assert checks["disagreement"]["rows"] == 80
    expected = accuracy_score(frame["label"], predicted(planned, frame))
    assert checks["metric"]["candidate"] == pytest.approx(expected)
    assert replay.verdict == "pass" and deployment.state == "progressing", replay.reason
