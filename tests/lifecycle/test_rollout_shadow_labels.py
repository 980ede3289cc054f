"""A shadow judged on labels: McNemar's test once labels join its paired requests, its
end after a number of labelled requests, and agreement by segment."""

from __future__ import annotations

import pytest
from django.test import Client
from scipy import stats

from common.errors import DomainError
from lifecycle.models import Deployment, RolloutAnalysis
from monitoring.models import Alert
from tests.lifecycle.deploy_support import approve, fresh, run_deployment
from tests.lifecycle.rollout_support import flipped_version, log_traffic
from tests.lifecycle.test_rollouts import (  # noqa: F401 - the fixture
    check,
    env,
    post_labels,
    rollouts_start,
)

pytestmark = pytest.mark.django_db


def test_a_shadow_ends_after_its_labelled_requests_with_mcnemars_test(env, personas, settings):  # noqa: F811
    settings.ROLLOUT_STEP_SECONDS = 1
    worse = approve(flipped_version(env["model"], personas), personas)
    log_traffic(env["production"], env["v1"], 10, prefix="old")
    deployment = run_deployment(
        rollouts_start(
            env,
            personas,
            worse,
            "shadow",
            {"shadow_share": 1.0, "duration_seconds": 3600, "end_after_labels": 80},
        )
    )
    assert deployment.state == "progressing" and deployment.end_after_labels == 80
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 90, seed=8, prefix="req")
    log_traffic(production, worse, 90, seed=8, prefix="req", shadow=True)  # the same requests

    # No labels yet: looked at again later, nothing recorded, nothing ended.
    deployment = check(deployment)
    assert deployment.state == "progressing" and not deployment.analyses.exists()

    post_labels(env, personas, 90, seed=8, prefix="req")
    deployment = check(deployment)
    assert deployment.state == "rolled_back", deployment.reason  # it disagrees: a failed check
    assert deployment.reason.startswith("shadow ended after 90 labelled requests")
    figures = RolloutAnalysis.objects.get(deployment=deployment, kind="shadow").figures
    assert (figures["paired"], figures["labelled"]) == (90, 90)
    m = figures["mcnemar"]
    b, c = m["stable_only_right"], m["candidate_only_right"]
    assert m["rows"] == 90
    assert b - c == round((m["stable_accuracy"] - m["candidate_accuracy"]) * 90)
    assert m["p_value"] == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)
    assert m["p_value"] < 1e-6 and m["stable_accuracy"] > 0.5 > m["candidate_accuracy"]
    metric = figures["checks"]["metric"]  # judged on the same labelled requests
    assert metric["verdict"] == "fail" and metric["metric"] == "accuracy"
    assert (metric["stable_labelled"], metric["candidate_labelled"]) == (90, 90)
    assert metric["stable"] == pytest.approx(m["stable_accuracy"])
    assert metric["candidate"] == pytest.approx(m["candidate_accuracy"])
    assert figures["segments"] == {}  # the churn model has no categorical input
    assert Alert.objects.filter(kind="rollback").count() == 1
    client = Client()
    client.force_login(personas.owner)
    page = client.get("/models/churn/").content.decode()
    assert f"McNemar on 90 labelled: stable only right {b}, shadow only right {c}" in page


def test_a_shadow_that_agrees_often_enough_is_rolled_back_on_its_metric(env, personas, settings):  # noqa: F811
    """Disagreement allowed up to 100 %: the labelled requests' accuracy decides."""
    settings.ROLLOUT_STEP_SECONDS = 1
    worse = approve(flipped_version(env["model"], personas), personas)
    log_traffic(env["production"], env["v1"], 10, prefix="old")
    deployment = run_deployment(
        rollouts_start(
            env,
            personas,
            worse,
            "shadow",
            {"duration_seconds": 3600, "end_after_labels": 60, "thresholds": {"disagreement": 1}},
        )
    )
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 60, seed=9, prefix="req")
    log_traffic(production, worse, 60, seed=9, prefix="req", shadow=True)
    post_labels(env, personas, 60, seed=9, prefix="req")
    deployment = check(deployment)
    assert deployment.state == "rolled_back", deployment.reason
    checks = RolloutAnalysis.objects.get(deployment=deployment, kind="shadow").figures["checks"]
    assert checks["disagreement"]["verdict"] == "pass"
    assert checks["metric"]["verdict"] == "fail"
    assert checks["metric"]["drop"] == pytest.approx(
        checks["metric"]["stable"] - checks["metric"]["candidate"]
    )
    assert "accuracy" in deployment.reason
    assert fresh(env["production"]).stable_version == env["v1"]


def test_a_shadow_with_too_few_labels_reports_mcnemar_skipped(env, personas):  # noqa: F811
    worse = approve(flipped_version(env["model"], personas), personas)
    log_traffic(env["production"], env["v1"], 10, prefix="old")
    deployment = run_deployment(
        rollouts_start(env, personas, worse, "shadow", {"shadow_share": 1.0, "duration_seconds": 1})
    )
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 40, seed=9, prefix="q")
    log_traffic(production, worse, 40, seed=9, prefix="q", shadow=True)
    post_labels(env, personas, 10, seed=9, prefix="q")
    deployment = check(deployment)
    figures = RolloutAnalysis.objects.get(deployment=deployment, kind="shadow").figures
    assert figures["labelled"] == 10
    assert figures["mcnemar"]["skipped"].startswith("10 labelled requests, fewer than 30")
    assert Deployment.objects.get(pk=deployment.pk).reason.startswith("shadow ended after 1s")


def test_a_canarys_metric_check_uses_the_retraining_policys_primary_metric(env, personas):  # noqa: F811
    from sklearn.metrics import roc_auc_score

    from lifecycle import retraining
    from tests.lifecycle.test_rollouts import canary

    retraining.retraining_policy_set(
        actor=personas.owner, model=env["model"], primary_metric="roc_auc"
    )
    worse = approve(flipped_version(env["model"], personas), personas)
    deployment = canary(env, personas, worse)
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 80, seed=50, prefix="s")
    log_traffic(production, worse, 60, seed=60, prefix="c")
    post_labels(env, personas, 80, seed=50, prefix="s")
    post_labels(env, personas, 60, seed=60, prefix="c")
    deployment = check(deployment)
    step = RolloutAnalysis.objects.filter(deployment=deployment, kind="step").first()
    metric = step.figures["checks"]["metric"]
    assert metric["metric"] == "roc_auc" and metric["verdict"] == "fail"
    # the stable side's figure is scikit-learn's ROC AUC on its labelled requests
    from lifecycle import scoring, serving
    from tests.conftest import training_frame
    from tests.lifecycle.rollout_support import rows

    model = serving.load_version(env["v1"].pk)
    frame = rows(80, 50)
    arrays = {spec.name: scoring.to_array(frame[spec.name].tolist(), spec) for spec in model.specs}
    _, proba = model.predict(scoring.to_frame(arrays))
    labels = training_frame(80, seed=50)["label"]
    assert metric["stable"] == pytest.approx(roc_auc_score(labels, proba[:, 1]), abs=1e-6)


def test_a_canary_that_names_its_metric_is_judged_on_it_before_the_policys(env, personas):  # noqa: F811
    from lifecycle import retraining
    from tests.lifecycle.test_rollouts import canary

    retraining.retraining_policy_set(
        actor=personas.owner, model=env["model"], primary_metric="roc_auc"
    )
    worse = approve(flipped_version(env["model"], personas), personas)
    deployment = canary(env, personas, worse, metric="accuracy")
    assert deployment.metric == "accuracy"
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 80, seed=50, prefix="s")
    log_traffic(production, worse, 60, seed=60, prefix="c")
    post_labels(env, personas, 80, seed=50, prefix="s")
    post_labels(env, personas, 60, seed=60, prefix="c")
    deployment = check(deployment)
    step = RolloutAnalysis.objects.filter(deployment=deployment, kind="step").first()
    assert step.figures["checks"]["metric"]["metric"] == "accuracy"


def test_a_canary_metric_that_does_not_fit_the_task_is_refused(env, personas):  # noqa: F811
    from tests.lifecycle.test_rollouts import canary

    v2 = approve(flipped_version(env["model"], personas), personas)
    with pytest.raises(DomainError) as refused:
        canary(env, personas, v2, metric="rmse")
    assert refused.value.code == "invalid"
    assert not Deployment.objects.filter(version=v2).exists()
