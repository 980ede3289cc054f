"""The Deployments panel for rollouts: deploy with a strategy, the canary's progress and
analysis figures, the rollback reason, and the pause/resume/promote/abort buttons."""

from __future__ import annotations

import json

import pytest

from lifecycle.models import Deployment
from tests.lifecycle.deploy_support import (
    approve,
    browser,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
    run_deployment,
)
from tests.lifecycle.rollout_support import log_traffic, shifted_version, wait_until_due

pytestmark = pytest.mark.django_db
ENV = "/models/churn/environments/production"


@pytest.fixture
def churn(personas, settings):
    settings.ROLLOUT_STEP_SECONDS = 1
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    return {"model": model, "v1": v1, "production": fresh(production)}


def start_canary(personas, steps="10,50,100", status=200):
    client = browser(personas.owner)
    response = client.post(
        f"{ENV}/deploy/",
        {"version": "2", "strategy": "canary", "canary-steps": steps},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == status
    return client, response.content.decode()


def test_the_deploy_form_offers_the_strategies_and_starts_a_canary(personas, churn):
    approve(new_version(churn["model"], personas, seed=1), personas)
    page = browser(personas.owner).get("/models/churn/").content.decode()
    form = page.split('class="deploy-form"')[1].split("</form>")[0]
    for value in ("direct", "blue_green", "canary", "shadow", "ab"):
        assert f'<option value="{value}"' in form
    _client, fragment = start_canary(personas)
    deployment = Deployment.objects.get(version__number=2)
    assert deployment.strategy == "canary" and deployment.steps == [10, 50, 100]
    assert 'hx-trigger="every 3s"' in fragment


def test_bad_steps_in_the_form_are_an_inline_error_and_nothing_starts(personas, churn):
    approve(new_version(churn["model"], personas, seed=1), personas)
    _client, fragment = start_canary(personas, steps="50,10", status=422)
    assert "must increase" in fragment
    _client, fragment = start_canary(personas, steps="ten", status=422)
    assert "whole percentages" in fragment
    assert not Deployment.objects.filter(version__number=2).exists()


def test_the_panel_shows_the_canary_step_its_figures_and_the_rollback_reason(personas, churn):
    bad = approve(shifted_version(churn["model"], personas), personas)
    _client, _ = start_canary(personas)
    deployment = run_deployment(Deployment.objects.get(version=bad))
    page = browser(personas.viewer).get("/models/churn/").content.decode()
    assert f"canary v{bad.number}: step 1, 10.0%" in page
    assert "step 1 of 3 (10 → 50 → 100 %)" in page
    assert "rollout-action" not in page  # the viewer has no buttons

    from lifecycle import rollouts

    production = fresh(churn["production"])
    for round_ in range(2):
        log_traffic(production, churn["v1"], 80, seed=round_, prefix=f"s{round_}")
        log_traffic(production, bad, 40, seed=10 + round_, prefix=f"c{round_}")
        wait_until_due(deployment)
        rollouts.rollout_check(deployment_id=deployment.pk)
    deployment.refresh_from_db()
    assert deployment.state == "rolled_back"
    page = browser(personas.viewer).get("/models/churn/").content.decode()
    row = page.split(f'id="deployment-{deployment.pk}"')[1].split('class="rollout-analyses"')[1]
    row = row.split("</table>")[0]
    assert "automatic rollback: prediction PSI" in page
    assert row.count("verdict-fail") == 2 and "rollback" in row
    assert "80 / " not in row and "40 / 80" in row  # candidate / stable requests

    # The figures over time, one point per analysis, folded open because an analysis failed.
    panel = page.split(f'id="deployment-{deployment.pk}"')[1]
    assert f'<details class="fold rollout-chart" id="rollout-chart-{deployment.pk}" open>' in panel
    assert "3 analyses over time, 2 failed: error rate, p99 latency, prediction drift" in panel
    spec = json.loads(
        panel.split(f'id="rollout-chart-spec-{deployment.pk}" type="application/json">')[1].split(
            "</script>"
        )[0]
    )
    psi = next(
        t for t in spec["data"] if t["name"].startswith("Prediction drift") and "cand" in t["name"]
    )
    analyses = list(deployment.analyses.order_by("id"))
    assert psi["x"] == [a.created_at.isoformat() for a in analyses]
    assert psi["y"][1:] == [a.figures["checks"]["prediction_psi"]["psi"] for a in analyses[1:]]
    # The replay before exposure says what it found (nothing logged yet to replay).
    assert "Replay before exposure:" in panel
    assert "no logged production requests to replay" in panel.split('class="replay-result"')[1]


def test_every_step_in_the_history_says_why_it_moved(personas, churn):
    approve(new_version(churn["model"], personas, seed=1), personas)
    _client, _ = start_canary(personas)
    deployment = run_deployment(Deployment.objects.get(version__number=2))
    browser(personas.owner).post(
        f"{ENV}/deployments/{deployment.pk}/action/",
        {"action": "promote", "reason": ""},
        HTTP_HX_REQUEST="true",
    )
    page = browser(personas.viewer).get("/models/churn/").content.decode()
    history = page.split('class="env-history"')[1].split("</table>")[0]
    reasons = [cell.split("</td>")[0] for cell in history.split('class="history-reason">')[1:]]
    # Created; v1 direct: requested, switched; v2 canary: requested, step 1, promoted.
    assert len(reasons) == 6 and all(r.strip() and r != "—" for r in reasons), reasons
    assert reasons[-1] == "created by owner, nothing deployed yet"
    assert reasons[-2].startswith("v1 requested by owner: direct")
    assert reasons[-3].startswith("direct deployment of v1: ")
    assert reasons[2].startswith("v2 requested by owner: canary, steps 10 → 50 → 100 %")
    assert "canary step 1 of 3: 10 %" in reasons[1]
    assert "promoted by owner" in reasons[0]


def test_the_buttons_pause_resume_promote_and_refuse_what_the_state_forbids(personas, churn):
    approve(new_version(churn["model"], personas, seed=1), personas)
    client, _ = start_canary(personas)
    deployment = run_deployment(Deployment.objects.get(version__number=2))
    action = f"{ENV}/deployments/{deployment.pk}/action/"
    page = client.get("/models/churn/").content.decode()
    assert 'value="pause"' in page and 'value="promote"' in page

    client.post(action, {"action": "pause", "reason": "lunch"}, HTTP_HX_REQUEST="true")
    deployment.refresh_from_db()
    assert deployment.state == "paused" and deployment.reason == "lunch"
    client.post(action, {"action": "resume"}, HTTP_HX_REQUEST="true")
    deployment.refresh_from_db()
    assert deployment.state == "progressing"

    viewer = browser(personas.viewer).post(action, {"action": "abort"}, HTTP_HX_REQUEST="true")
    assert "not allowed" in viewer.content.decode()
    deployment.refresh_from_db()
    assert deployment.state == "progressing"

    client.post(action, {"action": "promote"}, HTTP_HX_REQUEST="true")
    deployment.refresh_from_db()
    assert deployment.state == "succeeded"
    assert fresh(churn["production"]).stable_version.number == 2
    again = client.post(action, {"action": "abort"}, HTTP_HX_REQUEST="true").content.decode()
    assert "cannot be aborted" in again


def test_a_shadow_started_on_the_form_has_its_disagreement_drawn_over_time(personas, churn):
    from lifecycle import rollouts

    v2 = approve(new_version(churn["model"], personas, seed=1), personas)
    log_traffic(churn["production"], churn["v1"], 10, prefix="old")
    response = browser(personas.owner).post(
        f"{ENV}/deploy/",
        {"version": "2", "strategy": "shadow", "shadow-duration_seconds": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    deployment = run_deployment(Deployment.objects.get(version=v2))
    production = fresh(churn["production"])
    log_traffic(production, churn["v1"], 50, seed=7, prefix="req")
    log_traffic(production, v2, 50, seed=7, prefix="req", shadow=True)  # the same requests
    wait_until_due(deployment)
    rollouts.rollout_check(deployment_id=deployment.pk)
    analysis = deployment.analyses.get(kind="shadow")

    page = browser(personas.viewer).get("/models/churn/").content.decode()
    fold = page.split(f'id="rollout-chart-{deployment.pk}"')[1]
    assert fold.startswith(">")  # folded: nothing failed
    assert "1 analysis over time: error rate, p99 latency, prediction drift, disagreement" in fold
    spec = json.loads(fold.split('type="application/json">')[1].split("</script>")[0])
    rate = next(t for t in spec["data"] if t["name"] == "Disagreement with stable: candidate")
    limit = next(t for t in spec["data"] if t["name"] == "Disagreement with stable: fails above")
    assert rate["y"] == [analysis.figures["checks"]["disagreement"]["rate"]]
    assert limit["y"] == [0.2]
