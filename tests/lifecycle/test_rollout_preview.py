"""Blue/green held for a preview: the candidate, warm, answers only callers with the deploy
right who ask for it by version (``X-Model-Version`` or ``?version=``); stable takes all
other traffic; the switch is a person's promote or the end of the hold."""

from __future__ import annotations

import pytest
from django.test import override_settings

from common.errors import DomainError
from lifecycle import deployments, rollouts, serving
from lifecycle.models import EnvironmentTransition
from tests.conftest import client_for
from tests.lifecycle.deploy_support import approve, fresh, new_version, run_deployment
from tests.lifecycle.rollout_support import log_traffic, wait_until_due
from tests.lifecycle.test_serving import (  # noqa: F401 - fixtures
    ROWS,
    _fresh_serving_state,
    expected,
    post,
    sent,
    served,
    token_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("config.serve_urls")]
BODY = {"inputs": ROWS.head(5).values.tolist()}
API = "/api/v1/models/churn/environments/production/deployments"


def held(served, personas, hold=60):  # noqa: F811
    v2 = approve(new_version(served["model"], personas, seed=1), personas)
    log_traffic(served["production"], served["v1"], 40)
    deployment = deployments.deployment_start(
        actor=personas.owner,
        environment=fresh(served["production"]),
        version=v2,
        strategy="blue_green",
        plan={"hold_seconds": hold},
    )
    deployment = run_deployment(deployment)
    serving.STATE.models.get(v2.pk)  # what the loader thread does on its next poll
    return v2, deployment


def test_a_held_blue_green_previews_the_candidate_to_deployers_only(
    served,  # noqa: F811
    personas,
):
    v2, deployment = held(served, personas)
    assert deployment.state == "progressing", deployment.reason
    production = fresh(served["production"])
    assert (production.phase, production.candidate_mode) == ("previewing", "preview")
    assert (production.stable_version, production.candidate_version) == (served["v1"], v2)
    assert production.candidate_share == 0.0
    assert deployment.analyses.get().kind == "replay"  # replayed before the preview

    # Every caller without a version: stable, for all the traffic.
    for i in range(20):
        answer = post(served["token"], BODY, HTTP_X_REQUEST_ID=f"r{i}")
        assert answer.status_code == 200 and answer["X-Model-Version"] == "1"
    # A deployer asks for the candidate: its answer, by header or by query.
    deployer = token_for(personas.owner)
    by_header = post(deployer, BODY, HTTP_X_MODEL_VERSION="2")
    assert by_header.status_code == 200 and by_header["X-Model-Version"] == "2"
    assert by_header.json()["predictions"] == expected(ROWS.head(5), seed=1)
    by_query = post(deployer, BODY, url="/serve/churn/production/invocations?version=2")
    assert by_query.status_code == 200 and by_query["X-Model-Version"] == "2"
    # The serve right alone: a 403 for the candidate, never stable's answer in its place.
    refused = post(served["token"], BODY, HTTP_X_MODEL_VERSION="2")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    # Asking for the stable version by number is anyone's.
    stable = post(served["token"], BODY, url="/serve/churn/production/invocations?version=1")
    assert stable.status_code == 200 and stable["X-Model-Version"] == "1"
    # A version not served here, or not a number: clear 4xx.
    missing = post(deployer, BODY, HTTP_X_MODEL_VERSION="7")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "version_not_served"
    assert post(deployer, BODY, HTTP_X_MODEL_VERSION="two").status_code == 400


def test_a_person_promotes_the_preview_in_one_switch(served, personas):  # noqa: F811
    v2, deployment = held(served, personas, hold=3600)
    api = client_for(personas.owner)
    with override_settings(ROOT_URLCONF="config.urls"):  # the web app's API, then serving again
        promoted = api.post(
            f"{API}/{deployment.pk}/promote", {"reason": "looks right"}, format="json"
        )
    assert promoted.status_code == 200, promoted.content
    assert promoted.json()["state"] == "succeeded"
    production = fresh(served["production"])
    assert (production.phase, production.stable_version, production.previous_version) == (
        "idle",
        v2,
        served["v1"],
    )
    assert production.candidate_version is None and production.candidate_mode == "split"
    answer = post(served["token"], BODY)
    assert answer.status_code == 200 and answer["X-Model-Version"] == "2"
    events = list(
        EnvironmentTransition.objects.filter(deployment=deployment)
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert events == ["deploy_started", "preview_started", "switched"]
    deployment.refresh_from_db()
    assert deployment.switched_at is not None and deployment.reason == "looks right"


def test_the_hold_running_out_switches_without_a_person(served, personas):  # noqa: F811
    v2, deployment = held(served, personas, hold=1)
    wait_until_due(deployment)
    assert rollouts.rollout_check(deployment_id=deployment.pk)
    deployment.refresh_from_db()
    assert deployment.state == "succeeded" and "preview held 1s" in deployment.reason
    assert fresh(served["production"]).stable_version == v2


def test_a_paused_preview_waits_and_an_aborted_one_leaves_stable_untouched(
    served,  # noqa: F811
    personas,
):
    _v2, deployment = held(served, personas, hold=1)
    rollouts.deployment_pause(actor=personas.owner, deployment=deployment, reason="checking")
    deployment.refresh_from_db()
    assert deployment.next_check_at is None  # the hold no longer runs out
    rollouts.deployment_abort(actor=personas.owner, deployment=deployment)
    deployment.refresh_from_db()
    production = fresh(served["production"])
    assert deployment.state == "aborted"
    assert (production.phase, production.stable_version, production.candidate_version) == (
        "idle",
        served["v1"],
        None,
    )
    gone = post(token_for(personas.owner), BODY, HTTP_X_MODEL_VERSION="2")
    assert gone.status_code == 404


def test_a_hold_is_a_blue_green_field_and_needs_a_stable_version(served, personas):  # noqa: F811
    v2 = approve(new_version(served["model"], personas, seed=1), personas)
    with pytest.raises(DomainError) as refused:
        deployments.deployment_start(
            actor=personas.owner,
            environment=fresh(served["production"]),
            version=v2,
            strategy="canary",
            plan={"hold_seconds": 30},
        )
    assert refused.value.code == "invalid" and "hold_seconds" in refused.value.details
    from tests.lifecycle.deploy_support import environment

    empty = environment(served["model"], name="staging")
    with pytest.raises(DomainError) as refused:
        deployments.deployment_start(
            actor=personas.owner,
            environment=empty,
            version=v2,
            strategy="blue_green",
            plan={"hold_seconds": 30},
        )
    assert refused.value.code == "no_stable_version"
    assert fresh(empty).phase == "idle"
