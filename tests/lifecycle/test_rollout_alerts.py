"""An automatic rollback opens a monitoring alert (through monitoring's service) with the
figures and the reason, besides its audit and webhook events; a person's abort does not."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from common.events import register_event_listener
from monitoring.models import Alert
from tests.conftest import client_for
from tests.lifecycle.deploy_support import approve, fresh, new_version
from tests.lifecycle.rollout_support import log_traffic, shifted_version
from tests.lifecycle.test_rollouts import canary, check, env  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    register_event_listener(lambda name, payload: seen.append((name, payload)))
    return seen


def test_an_automatic_rollback_opens_an_alert_with_its_figures_and_reason(
    env,  # noqa: F811
    personas,
    events,
    django_capture_on_commit_callbacks,
):
    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = canary(env, personas, v2)
    production = fresh(env["production"])
    log_traffic(production, env["v1"], 80, seed=1, prefix="s")
    log_traffic(production, v2, 40, seed=2, errors=5, prefix="c")
    with django_capture_on_commit_callbacks(execute=True):
        deployment = check(deployment)
    assert deployment.state == "rolled_back"

    alert = Alert.objects.get()
    assert (alert.kind, alert.status, alert.monitor) == ("rollback", "open", None)
    assert alert.registered_model == env["model"]
    assert deployment.reason in alert.message and "error rate" in alert.message
    assert "production" in alert.message and f"v{v2.number}" in alert.message
    details = alert.details
    assert details["deployment"] == deployment.pk and details["environment"] == "production"
    assert (details["version"], details["stable_version"]) == (v2.number, env["v1"].number)
    assert details["failed_checks"] == ["error_rate"]
    error_rate = details["checks"]["error_rate"]
    assert error_rate["verdict"] == "fail"
    # the same figure the deployment's own analysis recorded
    last = deployment.analyses.order_by("id").last()
    assert error_rate == last.figures["checks"]["error_rate"]

    names = [name for name, _ in events]
    assert "monitoring.alert.opened" in names and "lifecycle.deployment.rolled_back" in names
    opened = dict(events)["monitoring.alert.opened"]
    assert opened["alert"] == alert.pk and opened["kind"] == "rollback"
    assert opened["monitor"] is None


def test_a_rollback_alert_is_listed_mailed_and_resolved_like_any_alert(
    env,  # noqa: F811
    personas,
    mailoutbox,
    client,
):
    from monitoring.tasks import email_alert

    bad = approve(shifted_version(env["model"], personas), personas)
    deployment = canary(env, personas, bad)
    production = fresh(env["production"])
    for round_ in range(2):  # prediction drift's failure limit is 2
        log_traffic(production, env["v1"], 80, seed=10 + round_, prefix=f"s{round_}")
        log_traffic(production, bad, 40, seed=20 + round_, prefix=f"c{round_}")
        deployment = check(deployment)
    assert deployment.state == "rolled_back"
    alert = Alert.objects.get(kind="rollback")
    assert alert.details["failed_checks"] == ["prediction_psi"]
    assert alert.details["checks"]["prediction_psi"]["psi"] > 0.2

    api = client_for(personas.owner)
    listed = api.get("/api/v1/alerts/?kind=rollback")
    assert listed.status_code == 200
    body = listed.json()
    rows = body["results"] if isinstance(body, dict) else body
    assert [(r["id"], r["monitor"], r["kind"]) for r in rows] == [(alert.pk, None, "rollback")]
    client.force_login(personas.owner)
    page = client.get(f"/monitoring/models/{env['model'].name}/alerts/?alerts=active")
    assert page.status_code == 200 and "Automatic rollback" in page.content.decode()

    assert email_alert(alert.pk) == 1
    assert "rollout controller" in mailoutbox[0].body
    assert "prediction PSI" in mailoutbox[0].body

    resolved = api.post(f"/api/v1/alerts/{alert.pk}/resolve/", {"comment": "ok"}, format="json")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"


def test_a_person_aborting_a_canary_opens_no_alert(env, personas):  # noqa: F811
    from lifecycle import rollouts

    v2 = approve(new_version(env["model"], personas, seed=1), personas)
    deployment = canary(env, personas, v2)
    rollouts.deployment_abort(actor=personas.owner, deployment=deployment, reason="not today")
    assert not Alert.objects.exists()


def test_only_a_rollback_alert_may_have_no_monitor(env):  # noqa: F811
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(registered_model=env["model"], kind="drift", message="no monitor")
    Alert.objects.create(registered_model=env["model"], kind="rollback", message="fine")
    Alert.objects.create(registered_model=env["model"], kind="rollback", message="twice: fine")
    assert Alert.objects.filter(kind="rollback", status="open").count() == 2
