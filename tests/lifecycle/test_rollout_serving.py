"""Serving under a rollout: a shadow scores beside stable and never answers; blue/green
keeps the previous version warm; a blue/green deployment replays, then switches."""

from __future__ import annotations

import time

import pytest

from lifecycle import deployments, prediction_log, serving
from lifecycle.models import Deployment, RolloutAnalysis
from tests.lifecycle.deploy_support import approve, fresh, new_version, run_deployment
from tests.lifecycle.rollout_support import log_traffic
from tests.lifecycle.test_serving import (  # noqa: F401 - fixtures
    ROWS,
    _fresh_serving_state,
    expected,
    post,
    sent,
    served,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("config.serve_urls")]


def test_a_shadow_scores_after_the_answer_and_is_logged_as_shadow_never_returned(
    served,  # noqa: F811
    sent,  # noqa: F811
    personas,
):
    v2 = approve(new_version(served["model"], personas, seed=1), personas)
    log_traffic(served["production"], served["v1"], 5)  # some traffic: a shadow may start
    deployment = deployments.deployment_start(
        actor=personas.owner,
        environment=served["production"],
        version=v2,
        strategy="shadow",
        plan={"shadow_share": 1.0, "duration_seconds": 60},
    )
    assert run_deployment(deployment).state == "progressing"
    # What the loader thread does on the poll that sees the shadow (here in this thread:
    # the test's transaction is not visible to another thread's connection).
    serving.STATE.models.get(v2.pk)
    for i in range(20):
        response = post(
            served["token"], {"inputs": ROWS.iloc[[i]].values.tolist()}, HTTP_X_REQUEST_ID=f"q{i}"
        )
        assert response.status_code == 200 and response["X-Model-Version"] == "1"
        assert response.json()["predictions"] == expected(ROWS.iloc[[i]])
    deadline = time.monotonic() + 10
    while serving.STATE._shadow_pending and time.monotonic() < deadline:
        time.sleep(0.05)
    prediction_log.LOG.flush()
    by_version: dict[int, list] = {}
    for message in sent:
        by_version.setdefault(message["version_id"], []).append(message)
    stable_rows = [s for m in by_version[served["v1"].pk] for s in m["ok"]["shadow"]]
    shadow_msgs = by_version[v2.pk]
    shadow_ids = [r for m in shadow_msgs for r in m["ok"]["request_id"]]
    assert stable_rows == [False] * 20
    assert sorted(shadow_ids) == sorted(f"q{i}" for i in range(20))
    assert all(flag for m in shadow_msgs for flag in m["ok"]["shadow"])
    predictions = {
        r: p
        for m in shadow_msgs
        for r, p in zip(m["ok"]["request_id"], m["ok"]["prediction"], strict=True)
    }
    assert [predictions[f"q{i}"] for i in range(20)] == expected(ROWS.head(20), seed=1)


def test_a_route_keeps_the_previous_version_warm_for_a_while_after_a_switch(settings):
    from django.utils import timezone

    route = serving.Route(
        environment_id=1, model_id=1, model="m", environment="e", stable=2, stable_number=2,
        candidate=None, candidate_number=None, share=0.0, target=None, generation=3,
        previous=1, stable_since=timezone.now(),
    )  # fmt: skip
    settings.SERVE_KEEP_PREVIOUS_SECONDS = 600
    assert route.keep_warm() == {1, 2}
    settings.SERVE_KEEP_PREVIOUS_SECONDS = 0
    assert route.keep_warm() == {2}


def test_a_blue_green_deployment_replays_logged_requests_then_switches(
    served,  # noqa: F811
    personas,
):
    v2 = approve(new_version(served["model"], personas, seed=1), personas)
    log_traffic(served["production"], served["v1"], 40)
    deployment = deployments.deployment_start(
        actor=personas.owner,
        environment=served["production"],
        version=v2,
        strategy="blue_green",
    )
    done = run_deployment(deployment)
    assert done.state == "succeeded", done.reason
    replay = RolloutAnalysis.objects.get(deployment=done)
    assert (replay.kind, replay.verdict, replay.figures["rows"]) == ("replay", "pass", 40)
    production = fresh(served["production"])
    assert (production.stable_version, production.previous_version) == (v2, served["v1"])
    assert Deployment.objects.get(pk=done.pk).switched_at is not None
