"""Environments, direct deployments and rollback: transitions, services, API, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from common.errors import DomainError
from common.models import AuditEvent
from lifecycle import deployments
from lifecycle import transitions as t
from lifecycle.models import Deployment, EnvironmentTransition, ServingProcess
from registry import services as registry_services
from registry.models import Alias
from tests.conftest import client_for, create_model, ready_version
from tests.lifecycle.deploy_support import (
    approve,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
    run_deployment,
)

pytestmark = pytest.mark.django_db

API = "/api/v1/models/churn/environments"


# --- the pure transition tables ----------------------------------------------------------


def test_a_switch_makes_the_target_stable_and_remembers_the_previous_one():
    state = t.EnvironmentState(stable=1)
    warming = t.deploy_started(state, version=2)
    assert (warming.phase, warming.stable, warming.target) == (t.DEPLOYING, 1, 2)
    done = t.switched(warming, version=2)
    assert (done.phase, done.stable, done.previous, done.target) == (t.IDLE, 2, 1, None)


def test_a_second_deployment_is_refused_while_one_is_in_progress():
    warming = t.deploy_started(t.EnvironmentState(stable=1), version=2)
    with pytest.raises(t.TransitionRefused) as refused:
        t.deploy_started(warming, version=3)
    assert refused.value.code == "deployment_in_progress"


def test_a_switch_for_a_version_the_environment_no_longer_waits_for_is_refused():
    warming = t.deploy_started(t.EnvironmentState(stable=1), version=2)
    with pytest.raises(t.TransitionRefused):
        t.switched(warming, version=3)
    with pytest.raises(t.TransitionRefused):
        t.switched(t.deploy_failed(warming), version=2)


def test_rollback_drops_a_candidate_before_it_touches_stable():
    split = t.split_set(t.EnvironmentState(stable=1, previous=7), candidate=2, share=0.1)
    back = t.rolled_back(split, earlier=None)
    assert (back.stable, back.previous, back.candidate, back.share) == (1, 7, None, 0.0)


def test_rollback_restores_previous_and_keeps_going_back_never_forth():
    state = t.EnvironmentState(stable=3, previous=2)
    once = t.rolled_back(state, earlier=1)
    assert (once.stable, once.previous) == (2, 1)
    twice = t.rolled_back(once, earlier=None)
    assert (twice.stable, twice.previous) == (1, None)
    with pytest.raises(t.TransitionRefused) as refused:
        t.rolled_back(twice, earlier=None)
    assert refused.value.code == "nothing_to_roll_back"


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), "half"])
def test_a_split_share_outside_the_unit_interval_is_refused(share):
    with pytest.raises(t.TransitionRefused):
        t.split_set(t.EnvironmentState(stable=1), candidate=2, share=share)


def test_a_split_needs_a_stable_version_and_a_distinct_candidate():
    with pytest.raises(t.TransitionRefused):
        t.split_set(t.EnvironmentState(), candidate=2, share=0.1)
    with pytest.raises(t.TransitionRefused):
        t.split_set(t.EnvironmentState(stable=2), candidate=2, share=0.1)


def test_deployment_status_changes_follow_the_table():
    assert t.deployment_next(t.PENDING, t.WARMING) == t.WARMING
    assert t.deployment_next(t.WARMING, t.SUCCEEDED) == t.SUCCEEDED
    for terminal in (t.SUCCEEDED, t.FAILED):
        with pytest.raises(t.TransitionRefused):
            t.deployment_next(terminal, t.WARMING)


# --- services ----------------------------------------------------------------------------


@pytest.fixture
def churn(personas):
    return low_risk_model(personas)


def test_production_is_protected_and_adopts_an_existing_alias(personas, churn):
    v1 = approve(new_version(churn, personas), personas)
    registry_services.alias_set(
        actor=personas.owner, model=churn, name="production", version_number=v1.number
    )
    production = environment(churn)
    assert production.protected
    assert production.stable_version_id == v1.pk
    staging = environment(churn, "staging")
    assert not staging.protected and staging.stable_version_id is None
    with pytest.raises(DomainError) as refused:
        deployments.environment_create(
            actor=personas.owner, model=churn, name="production", protected=False
        )
    assert refused.value.code == "always_protected"


def test_creating_an_environment_needs_the_manage_right(personas, churn):
    with pytest.raises(DomainError) as refused:
        deployments.environment_create(actor=personas.bot, model=churn, name="staging")
    assert refused.value.status == 403


def test_a_direct_deployment_switches_stable_moves_the_alias_and_audits(personas, churn):
    v1 = approve(new_version(churn, personas), personas)
    production = environment(churn)
    generation = production.generation
    done = deploy(production, v1, personas.owner)
    assert done.state == "succeeded" and done.status == "succeeded"
    assert "no serving process alive" in done.warm_report["note"]
    production = fresh(production)
    assert production.stable_version_id == v1.pk and production.phase == "idle"
    assert production.deployed_by == personas.owner
    assert production.generation > generation
    alias = Alias.objects.get(registered_model=churn, name="production")
    assert alias.version_id == v1.pk and alias.protected
    events = list(
        EnvironmentTransition.objects.filter(environment=production)
        .order_by("id")
        .values_list("event", flat=True)
    )
    assert events == ["created", "deploy_started", "switched"]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "lifecycle.environment.deploy_started",
        "lifecycle.environment.switched",
        "lifecycle.deployment.succeeded",
        "registry.alias.set",
    } <= actions


def test_an_unapproved_version_is_refused_for_production_and_nothing_changes(personas, churn):
    production = environment(churn)
    version = new_version(churn, personas)
    before = AuditEvent.objects.count()
    with pytest.raises(DomainError) as refused:
        deployments.deployment_start(actor=personas.owner, environment=production, version=version)
    assert refused.value.code == "not_approved" and refused.value.status == 409
    assert not Deployment.objects.exists()
    assert fresh(production).phase == "idle"
    assert AuditEvent.objects.count() == before


def test_any_ready_version_may_go_to_an_unprotected_environment(personas, churn):
    staging = environment(churn, "staging")
    version = new_version(churn, personas)
    assert deploy(staging, version, personas.owner).state == "succeeded"
    assert Alias.objects.get(registered_model=churn, name="staging").version == version


def test_a_deployment_is_refused_while_another_is_in_progress(personas, churn):
    staging = environment(churn, "staging")
    v1, v2 = new_version(churn, personas), new_version(churn, personas, seed=1)
    deployments.deployment_start(actor=personas.owner, environment=staging, version=v1)
    with pytest.raises(DomainError) as refused:
        deployments.deployment_start(actor=personas.owner, environment=staging, version=v2)
    assert refused.value.code == "deployment_in_progress" and refused.value.status == 409
    assert Deployment.objects.count() == 1


def test_a_version_of_another_model_is_refused(personas, churn):
    staging = environment(churn, "staging")
    other = create_model(personas.owner, name="other", risk_tier="low")
    stranger = ready_version(other, personas.owner)
    with pytest.raises(DomainError) as refused:
        deployments.deployment_start(actor=personas.owner, environment=staging, version=stranger)
    assert refused.value.status == 400
    assert not Deployment.objects.exists()


def test_deploying_needs_the_deploy_right(personas, churn):
    staging = environment(churn, "staging")
    version = new_version(churn, personas)
    with pytest.raises(DomainError) as refused:
        deployments.deployment_start(actor=personas.bot, environment=staging, version=version)
    assert refused.value.status == 403


def test_rollback_restores_the_previous_stable_version_with_its_reason(personas, churn):
    v1 = approve(new_version(churn, personas), personas)
    v2 = approve(new_version(churn, personas, seed=1), personas)
    production = environment(churn)
    deploy(production, v1, personas.owner)
    deploy(fresh(production), v2, personas.owner)
    deployments.environment_rollback(
        actor=personas.owner, environment=fresh(production), reason="p99 doubled"
    )
    production = fresh(production)
    assert production.stable_version_id == v1.pk
    assert Alias.objects.get(registered_model=churn, name="production").version_id == v1.pk
    event = AuditEvent.objects.filter(action="lifecycle.environment.rolled_back").get()
    assert event.after["reason"] == "p99 doubled" and event.after["stable"] == v1.number
    assert event.before["stable"] == v2.number
    with pytest.raises(DomainError) as refused:
        deployments.environment_rollback(actor=personas.owner, environment=production, reason="")
    assert refused.value.status == 400


def test_a_second_rollback_goes_further_back_not_to_the_rolled_back_version(personas, churn):
    staging = environment(churn, "staging")
    v1, v2, v3 = (new_version(churn, personas, seed=s) for s in (0, 1, 2))
    for version in (v1, v2, v3):
        deploy(fresh(staging), version, personas.owner)
    deployments.environment_rollback(actor=personas.owner, environment=staging, reason="a")
    assert fresh(staging).stable_version_id == v2.pk
    deploy(fresh(staging), v3, personas.owner)
    deployments.environment_rollback(actor=personas.owner, environment=staging, reason="b")
    assert fresh(staging).stable_version_id == v2.pk
    deployments.environment_rollback(actor=personas.owner, environment=staging, reason="c")
    assert fresh(staging).stable_version_id == v1.pk


def test_the_environment_alias_moves_only_through_a_deployment(personas, churn):
    v1 = approve(new_version(churn, personas), personas)
    v2 = approve(new_version(churn, personas, seed=1), personas)
    production = environment(churn)
    deploy(production, v1, personas.owner)
    with pytest.raises(DomainError) as refused:
        registry_services.alias_set(
            actor=personas.owner, model=churn, name="production", version_number=v2.number
        )
    assert refused.value.code == "environment_alias"
    with pytest.raises(DomainError):
        registry_services.alias_delete(actor=personas.owner, model=churn, name="production")
    client = client_for(personas.owner)
    put = client.put(
        "/api/v1/models/churn/aliases/production", {"version": v2.number}, format="json"
    )
    assert put.status_code == 409 and put.json()["error"]["code"] == "environment_alias"
    assert client.delete("/api/v1/models/churn/aliases/production").status_code == 409
    assert Alias.objects.get(registered_model=churn, name="production").version_id == v1.pk
    # Other aliases move as before.
    registry_services.alias_set(
        actor=personas.owner, model=churn, name="champion", version_number=v2.number
    )


def _process(warmed=(), failed=None, seen_ago: float = 0.0) -> ServingProcess:
    return ServingProcess.objects.create(
        token=f"p{ServingProcess.objects.count()}",
        host="serve-1",
        pid=100 + ServingProcess.objects.count(),
        last_seen_at=timezone.now() - timedelta(seconds=seen_ago),
        warmed=list(warmed),
        failed=failed or {},
    )


def test_the_switch_waits_for_every_live_process_to_warm_the_version(personas, churn, settings):
    settings.SERVE_WARM_TIMEOUT_SECONDS = 0.5
    staging = environment(churn, "staging")
    version = new_version(churn, personas)
    _process(warmed=[version.pk])
    _process(warmed=[], seen_ago=60)  # gone: not waited for
    done = deploy(staging, version, personas.owner)
    assert done.state == "succeeded"
    assert done.warm_report["note"] == "1 serving process(es) warmed"


def test_a_process_that_never_warms_the_version_fails_the_deployment(personas, churn, settings):
    settings.SERVE_WARM_TIMEOUT_SECONDS = 0.3
    staging = environment(churn, "staging")
    v1, v2 = new_version(churn, personas), new_version(churn, personas, seed=1)
    deploy(staging, v1, personas.owner)
    cold = _process(warmed=[v1.pk])
    done = deploy(fresh(staging), v2, personas.owner)
    assert done.state == "failed" and done.status == "succeeded"
    assert "did not report the version warmed" in done.reason and f":{cold.pid}" in done.reason
    staging = fresh(staging)
    assert staging.stable_version_id == v1.pk and staging.phase == "idle"
    assert Alias.objects.get(registered_model=churn, name="staging").version_id == v1.pk


def test_a_process_that_cannot_load_the_version_fails_it_at_once(personas, churn):
    staging = environment(churn, "staging")
    version = new_version(churn, personas)
    _process(failed={str(version.pk): "ArtifactRejected: not on the allow-list"})
    done = deploy(staging, version, personas.owner)
    assert done.state == "failed" and "not on the allow-list" in done.reason
    assert fresh(staging).stable_version_id is None


def test_a_rollback_supersedes_a_deployment_that_is_still_warming(personas, churn):
    staging = environment(churn, "staging")
    v1, v2 = new_version(churn, personas), new_version(churn, personas, seed=1)
    deploy(staging, v1, personas.owner)
    deploy(fresh(staging), v2, personas.owner)
    _process(warmed=[])  # never warms v1 again
    pending = deployments.deployment_start(
        actor=personas.owner, environment=fresh(staging), version=v1
    )
    deployments.environment_rollback(actor=personas.owner, environment=staging, reason="stop")
    assert Deployment.objects.get(pk=pending.pk).state == "failed"
    done = run_deployment(pending)
    assert done.state == "failed" and "superseded by a rollback" in done.reason
    assert fresh(staging).stable_version_id == v1.pk


def test_a_split_routes_a_share_to_an_approved_candidate_only(personas, churn):
    v1 = approve(new_version(churn, personas), personas)
    v2 = new_version(churn, personas, seed=1)
    production = environment(churn)
    deploy(production, v1, personas.owner)
    with pytest.raises(DomainError) as refused:
        deployments.environment_split_set(
            actor=personas.owner, environment=fresh(production), candidate=v2, share=0.1
        )
    assert refused.value.code == "not_approved"
    approve(v2, personas)
    deployments.environment_split_set(
        actor=personas.owner, environment=fresh(production), candidate=v2, share=0.1
    )
    production = fresh(production)
    assert (production.candidate_version_id, production.candidate_share) == (v2.pk, 0.1)


# --- API ----------------------------------------------------------------------------------


@pytest.fixture
def deployed(personas, churn):
    v1 = approve(new_version(churn, personas), personas)
    v2 = approve(new_version(churn, personas, seed=1), personas)
    production = environment(churn)
    deploy(production, v1, personas.owner)
    return {"v1": v1, "v2": v2, "production": fresh(production)}


def test_the_environment_list_is_visible_to_viewers_only(personas, deployed, api):
    assert api.get(f"{API}/").status_code == 401
    assert client_for(personas.outsider).get(f"{API}/").status_code == 404
    body = client_for(personas.viewer).get(f"{API}/").json()
    row = body["results"][0]
    assert row["name"] == "production" and row["stable"] == 1 and row["protected"]
    assert row["alias"] == "churn@production" and row["deployed_by"] == "owner"


@pytest.mark.parametrize(
    ("who", "status"), [("outsider", 404), ("viewer", 403), ("bot", 403), ("owner", 202)]
)
def test_deploying_through_the_api_follows_the_rights(personas, deployed, who, status):
    response = client_for(getattr(personas, who)).post(
        f"{API}/production/deployments/", {"version": 2, "strategy": "direct"}, format="json"
    )
    assert response.status_code == status, response.content
    if status == 202:
        body = response.json()
        assert body["version"] == 2 and body["state"] == "pending"
        detail = client_for(personas.viewer).get(f"{API}/production/deployments/{body['id']}/")
        assert detail.status_code == 200 and detail.json()["environment"] == "production"
    else:
        assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"version": 99}, "invalid"),
        ({"version": "two"}, "invalid"),
        ({}, "invalid"),
        ({"version": 2, "strategy": "ab", "share": 1.5}, "invalid"),
        ({"version": 2, "strategy": "ab", "steps": [50, 100]}, "invalid"),
        ({"version": 2, "strategy": "canary", "hold_seconds": 60}, "invalid"),
        ({"version": 2, "strategy": "canary", "steps": [5, 50, 25, 100]}, "invalid"),
        ({"version": 2, "strategy": "canary", "steps": [5, 25, 50]}, "invalid"),
        ({"version": 2, "strategy": "canary", "thresholds": {"accuracy_gap": 1}}, "invalid"),
        ({"version": 2, "strategy": "canary", "thresholds": {"error_rate": -1}}, "invalid"),
        ({"version": 2, "strategy": "direct", "steps": [100]}, "invalid"),
        ({"version": 2, "strategy": "shadow", "shadow_share": 1.5}, "invalid"),
    ],
)
def test_bad_deployment_requests_are_400s_in_the_one_error_shape(personas, deployed, payload, code):
    response = client_for(personas.owner).post(
        f"{API}/production/deployments/", payload, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert Deployment.objects.count() == 1


def test_an_unknown_environment_is_a_404(personas, deployed):
    response = client_for(personas.owner).post(
        f"{API}/nowhere/deployments/", {"version": 2}, format="json"
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_rollback_through_the_api_needs_a_reason_and_the_deploy_right(personas, deployed):
    deploy(deployed["production"], deployed["v2"], personas.owner)
    url = f"{API}/production/rollback"
    assert client_for(personas.viewer).post(url, {"reason": "x"}, format="json").status_code == 403
    assert client_for(personas.owner).post(url, {}, format="json").status_code == 400
    response = client_for(personas.owner).post(url, {"reason": "errors"}, format="json")
    assert response.status_code == 200 and response.json()["stable"] == 1
    again = client_for(personas.owner).post(url, {"reason": "again"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_roll_back"


def test_the_owner_creates_environments_through_the_api(personas, churn):
    client = client_for(personas.owner)
    response = client.post(f"{API}/", {"name": "staging"}, format="json")
    assert response.status_code == 201 and response.json()["protected"] is False
    assert client.post(f"{API}/", {"name": "staging"}, format="json").status_code == 409
    assert client.post(f"{API}/", {"name": "Bad Name"}, format="json").status_code == 400
    assert (
        client_for(personas.bot).post(f"{API}/", {"name": "qa"}, format="json").status_code == 403
    )


def test_the_openapi_schema_documents_the_deployment_endpoints(personas):
    schema = client_for(personas.owner).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    base = "/api/v1/models/{model_name}/environments/"
    assert "get" in paths[base]
    assert "post" in paths[base + "{environment}/deployments/"]
    assert "get" in paths[base + "{environment}/deployments/{id}/"]
    assert "post" in paths[base + "{environment}/rollback"]
    deploy_errors = paths[base + "{environment}/deployments/"]["post"]["responses"]
    for status in ("400", "403", "404", "409"):
        ref = deploy_errors[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/Error")


def test_a_deployment_retried_with_its_idempotency_key_is_started_once(personas, deployed):
    owner = client_for(personas.owner)
    url, body = f"{API}/production/deployments/", {"version": 2, "strategy": "direct"}
    first = owner.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="deploy-churn-2")
    again = owner.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="deploy-churn-2")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Deployment.objects.filter(version=deployed["v2"]).count() == 1
    other = owner.post(url, {"version": 1}, format="json", HTTP_IDEMPOTENCY_KEY="deploy-churn-2")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
