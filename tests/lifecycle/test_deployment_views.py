"""The approver UI: the model page's Deployments panel, deploy and rollback buttons, the
version page's "Deployed in", and an environment's prediction log page."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from lifecycle import prediction_log, serving_logs
from lifecycle.models import Deployment
from tests.lifecycle.deploy_support import (
    approve,
    browser,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def churn(personas):
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    v2 = approve(new_version(model, personas, seed=1), personas)
    v3 = new_version(model, personas, seed=2)  # not approved
    production = environment(model)
    deploy(production, v1, personas.owner)
    return {"model": model, "v1": v1, "v2": v2, "v3": v3, "production": fresh(production)}


def test_the_model_page_shows_each_environment_and_deploys_only_approved_versions(personas, churn):
    page = browser(personas.owner).get("/models/churn/").content.decode()
    assert 'id="panel-deployments"' in page and 'id="env-production"' in page
    assert "POST /serve/churn/production/invocations" in page
    assert "deployed by owner" in page
    form = page.split('class="deploy-form"')[1].split("</form>")[0]
    assert '<option value="2">' in form and '<option value="1">' in form
    assert '<option value="3">' not in form  # not approved: production would refuse it


def test_people_without_the_deploy_right_see_no_buttons(personas, churn):
    page = browser(personas.viewer).get("/models/churn/").content.decode()
    assert 'id="env-production"' in page
    assert "deploy-form" not in page and "rollback-form" not in page


def test_the_deploy_button_starts_a_deployment_and_the_panel_polls(personas, churn):
    response = browser(personas.owner).post(
        "/models/churn/environments/production/deploy/", {"version": "2"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    fragment = response.content.decode()
    assert fragment.startswith('<section class="card" id="panel-deployments"')
    assert 'hx-trigger="every 3s"' in fragment and "deploying v2" in fragment
    assert Deployment.objects.filter(version=churn["v2"], state="pending").exists()


def test_a_refused_deployment_is_shown_as_a_message_and_changes_nothing(personas, churn):
    response = browser(personas.owner).post(
        "/models/churn/environments/production/deploy/", {"version": "3"}, HTTP_HX_REQUEST="true"
    )
    assert "not approved" in response.content.decode()
    assert Deployment.objects.count() == 1


def test_the_rollback_button_restores_the_previous_version_with_a_reason(personas, churn):
    deploy(churn["production"], churn["v2"], personas.owner)
    client = browser(personas.owner)
    refused = client.post(
        "/models/churn/environments/production/rollback/", {"reason": ""}, HTTP_HX_REQUEST="true"
    )
    assert "needs a reason" in refused.content.decode()
    assert fresh(churn["production"]).stable_version == churn["v2"]
    response = client.post(
        "/models/churn/environments/production/rollback/", {"reason": "alerts"}, follow=True
    )
    assert response.status_code == 200
    assert fresh(churn["production"]).stable_version == churn["v1"]
    assert "rolled_back" in response.content.decode() and "alerts" in response.content.decode()


def test_the_viewer_cannot_deploy_through_the_ui_either(personas, churn):
    response = browser(personas.viewer).post(
        "/models/churn/environments/production/deploy/", {"version": "2"}, HTTP_HX_REQUEST="true"
    )
    assert "not allowed to deploy" in response.content.decode()
    assert Deployment.objects.count() == 1
    outsider = browser(personas.outsider).post(
        "/models/churn/environments/production/deploy/", {"version": "2"}
    )
    assert outsider.status_code == 404


def test_the_version_page_says_where_the_version_is_deployed(personas, churn):
    page = browser(personas.viewer).get("/models/churn/versions/1/").content.decode()
    assert (
        "Deployed in" in page and "<strong>production</strong>: stable (100% of requests)" in page
    )
    other = browser(personas.viewer).get("/models/churn/versions/2/").content.decode()
    assert "Not deployed in any environment." in other


def _log_some_traffic(churn) -> None:
    arrays = {"age": np.array([40.0]), "income": np.array([1.0]), "score": np.array([0.5])}
    sent = []
    prediction_log.LOG.sender = lambda task, message: sent.append(message)
    try:
        prediction_log.LOG._take()
        for i in range(3):
            prediction_log.LOG.record(
                environment_id=churn["production"].pk,
                version_id=churn["v1"].pk,
                user_id=None,
                request_id=f"r{i}",
                latency=0.002,
                features=arrays,
                predictions=[1],
            )
        prediction_log.LOG.record_error(
            environment_id=churn["production"].pk,
            version_id=churn["v1"].pk,
            user_id=None,
            request_id="bad",
            latency=0.001,
            status=400,
            code="wrong_type",
            column="income",
        )
        prediction_log.LOG.flush()
    finally:
        prediction_log.LOG.sender = None
    for message in sent:
        serving_logs.serving_log_ingest(message=json.loads(json.dumps(message)))


def test_the_panel_groups_recent_serving_errors_by_code_and_column(personas, churn):
    _log_some_traffic(churn)
    page = browser(personas.viewer).get("/models/churn/").content.decode()
    table = page.split('class="serving-errors"')[1].split("</table>")[0]
    assert "wrong_type" in table and "income" in table and "<td>1</td>" in table
    assert "v1: 4 requests, 1 errors" in page


def test_the_log_page_filters_and_exports(personas, churn):
    _log_some_traffic(churn)
    client = browser(personas.viewer)
    page = client.get("/models/churn/environments/production/log/?error=false").content.decode()
    assert "3 rows shown" in page and "r0" in page and "bad" not in page.split("<tbody>")[1]
    export = client.get("/models/churn/environments/production/log/?error=true&export=parquet")
    table = pq.read_table(io.BytesIO(export.content))
    assert table.column("request_id").to_pylist() == ["bad"]
    assert table.column("error_column").to_pylist() == ["income"]
    assert (
        browser(personas.outsider).get("/models/churn/environments/production/log/").status_code
        == 404
    )
