"""The deploy form on the Deployments panel: every strategy with its options, read into
the plan the API takes and started by the API's service; bad input is the form again
with the mistake at its field (422), and nothing changes."""

from __future__ import annotations

import pytest

from lifecycle.api.serializers import DeploymentRequestSerializer
from lifecycle.deployment_forms import DeployForms
from lifecycle.models import Deployment, EnvironmentTransition
from lifecycle.rollouts import PLAN_FIELDS
from tests.lifecycle.deploy_support import (
    approve,
    browser,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
)
from tests.lifecycle.rollout_support import log_traffic

pytestmark = pytest.mark.django_db
DEPLOY = "/models/churn/environments/production/deploy/"


@pytest.fixture
def churn(personas):
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    v2 = approve(new_version(model, personas, seed=1), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    history = EnvironmentTransition.objects.filter(environment=production).count()
    return {"model": model, "v1": v1, "v2": v2, "production": fresh(production), "history": history}


def post(personas, data, *, htmx=True):
    kwargs = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return browser(personas.owner).post(DEPLOY, {"version": "2", **data}, **kwargs)


def unchanged(churn):
    """Only v1's direct deployment, the environment idle on v1, no new history row."""
    production = fresh(churn["production"])
    assert list(Deployment.objects.values_list("version__number", flat=True)) == [1]
    assert production.phase == "idle" and production.stable_version == churn["v1"]
    assert production.candidate_version is None
    assert EnvironmentTransition.objects.filter(environment=production).count() == churn["history"]


# --- each strategy: the options reach the deployment ---------------------------------------


def test_a_canary_takes_its_steps_hold_min_requests_metric_and_thresholds(personas, churn):
    response = post(
        personas,
        {
            "strategy": "canary",
            "canary-steps": "10, 40,100",
            "canary-step_seconds": "90",
            "canary-min_requests": "50",
            "canary-metric": "f1",
            "canary-thresholds": "prediction_psi=0.3, error_rate=0.05",
            # Another strategy's options are in the page too, and are not read.
            "ab-share": "not a number",
            "shadow-shadow_share": "7",
        },
    )
    assert response.status_code == 200, response.content.decode()[:2000]
    d = Deployment.objects.get(version=churn["v2"])
    assert (d.strategy, d.steps, d.step_seconds, d.metric) == ("canary", [10, 40, 100], 90.0, "f1")
    assert d.thresholds["min_requests"] == 50.0
    assert d.thresholds["prediction_psi"] == 0.3 and d.thresholds["error_rate"] == 0.05
    assert d.thresholds["disagreement"] == 0.2  # the rest: the defaults
    assert "Deploying v2 to production (Canary" in response.content.decode()


def test_a_blue_green_takes_its_preview_hold_and_replay_thresholds(personas, churn):
    response = post(
        personas,
        {
            "strategy": "blue_green",
            "blue_green-hold_seconds": "120",
            "blue_green-thresholds": "disagreement=0.4",
        },
    )
    assert response.status_code == 200
    d = Deployment.objects.get(version=churn["v2"])
    assert (d.strategy, d.duration_seconds, d.thresholds["disagreement"]) == (
        "blue_green",
        120.0,
        0.4,
    )


def test_a_shadow_takes_its_share_duration_label_target_and_min_requests(personas, churn):
    log_traffic(churn["production"], churn["v1"], 5)
    response = post(
        personas,
        {
            "strategy": "shadow",
            "shadow-shadow_share": "0.25",
            "shadow-duration_seconds": "600",
            "shadow-end_after_labels": "200",
            "shadow-min_requests": "40",
        },
    )
    assert response.status_code == 200
    d = Deployment.objects.get(version=churn["v2"])
    assert (d.strategy, d.shadow_share, d.duration_seconds, d.end_after_labels) == (
        "shadow",
        0.25,
        600.0,
        200,
    )
    assert d.thresholds["min_requests"] == 40.0


def test_an_ab_experiment_takes_its_share_duration_label_target_interval_and_metric(
    personas, churn
):
    response = post(
        personas,
        {
            "strategy": "ab",
            "ab-share": "0.3",
            "ab-duration_seconds": "7200",
            "ab-end_after_labels": "500",
            "ab-step_seconds": "60",
            "ab-metric": "recall",
        },
    )
    assert response.status_code == 200
    d = Deployment.objects.get(version=churn["v2"])
    assert (d.strategy, d.shadow_share, d.duration_seconds, d.end_after_labels) == (
        "ab",
        0.3,
        7200.0,
        500,
    )
    assert (d.step_seconds, d.metric) == (60.0, "recall")


def test_blank_options_are_the_strategys_defaults_as_through_the_api(personas, churn, settings):
    response = post(personas, {"strategy": "canary", "canary-steps": "", "canary-metric": ""})
    assert response.status_code == 200
    d = Deployment.objects.get(version=churn["v2"])
    assert d.steps == [5, 25, 50, 100] and d.step_seconds == settings.ROLLOUT_STEP_SECONDS
    assert d.metric == ""


@pytest.mark.parametrize(
    ("strategy", "form", "body"),
    [
        (
            "canary",
            {"canary-steps": "5,50,100", "canary-step_seconds": "30", "canary-min_requests": "9"},
            {"steps": [5, 50, 100], "step_seconds": 30, "thresholds": {"min_requests": 9}},
        ),
        (
            "canary",
            {"canary-thresholds": "error_rate=0.1\nmetric_drop=0.02", "canary-metric": "f1"},
            {"thresholds": {"error_rate": 0.1, "metric_drop": 0.02}, "metric": "f1"},
        ),
        ("blue_green", {"blue_green-hold_seconds": "45"}, {"hold_seconds": 45}),
        (
            "shadow",
            {"shadow-shadow_share": "0.5", "shadow-end_after_labels": "10"},
            {"shadow_share": 0.5, "end_after_labels": 10},
        ),
        (
            "ab",
            {"ab-share": "0.5", "ab-duration_seconds": "60", "ab-metric": "recall"},
            {"share": 0.5, "duration_seconds": 60, "metric": "recall"},
        ),
        ("direct", {"canary-steps": "5,100"}, {}),
    ],
)
def test_the_form_reads_the_same_plan_as_the_apis_request_body(strategy, form, body):
    forms = DeployForms(
        {"version": "2", "strategy": strategy, **form}, environment_id=1, task="classification"
    )
    assert forms.is_valid(), forms.main.errors
    api = DeploymentRequestSerializer(data={"version": 2, "strategy": strategy, **body})
    assert api.is_valid(), api.errors
    expected = {k: v for k, v in api.validated_data.items() if k in PLAN_FIELDS}
    assert forms.plan() == expected


# --- bad input: the form again, the mistake at its field, nothing changed -----------------


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"strategy": "canary", "canary-steps": "50,10"}, "canary-steps", "must increase"),
        ({"strategy": "canary", "canary-steps": "5,50"}, "canary-steps", "100"),
        ({"strategy": "canary", "canary-steps": "ten"}, "canary-steps", "whole percentages"),
        (
            {"strategy": "canary", "canary-thresholds": "bogus=1"},
            "canary-thresholds",
            "unknown threshold(s): bogus",
        ),
        (
            {"strategy": "canary", "canary-thresholds": "error_rate"},
            "canary-thresholds",
            "is not name=value",
        ),
        (
            {"strategy": "canary", "canary-thresholds": "error_rate=-1"},
            "canary-thresholds",
            "must be a finite number",
        ),
        (
            {"strategy": "canary", "canary-step_seconds": "0"},
            "canary-step_seconds",
            "between 1 and 604800",
        ),
        (
            {"strategy": "canary", "canary-metric": "rmse"},
            "canary-metric",
            "Select a valid choice",
        ),
        (
            {"strategy": "blue_green", "blue_green-hold_seconds": "-5"},
            "blue_green-hold_seconds",
            "between 1 and 604800",
        ),
        (
            {"strategy": "shadow", "shadow-shadow_share": "1.5"},
            "shadow-shadow_share",
            "shadow_share is a number in (0, 1]",
        ),
        ({"strategy": "ab", "ab-share": "1"}, "ab-share", "share is a number in (0, 1)"),
        ({"strategy": "ab", "ab-share": "half"}, "ab-share", "Enter a number"),
        (
            {"strategy": "ab", "ab-end_after_labels": "2.5"},
            "ab-end_after_labels",
            "Enter a whole number",
        ),
    ],
)
def test_bad_options_are_shown_at_their_field_and_nothing_changes(
    personas, churn, data, field, message
):
    response = post(personas, data)
    assert response.status_code == 422
    page = response.content.decode()
    # The mistake at its field, the rest of what was typed kept, the chosen strategy kept.
    error = page.split(f'class="field-error" data-field="{field}"')[1].split("</span>")[0]
    assert message in error.replace("&#x27;", "'"), error
    assert f'<option value="{data["strategy"]}" selected>' in page
    unchanged(churn)


def test_a_bad_version_or_strategy_is_shown_on_the_form_and_nothing_changes(personas, churn):
    for data, message in (
        ({"version": "", "strategy": "canary"}, "Choose a version to deploy."),
        ({"version": "99"}, "churn has no version 99."),
        ({"strategy": "rainbow"}, "Select a valid choice"),
    ):
        response = browser(personas.owner).post(DEPLOY, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 422
        assert message in response.content.decode()
    unchanged(churn)


def test_a_refusal_of_the_service_is_shown_above_the_form_and_nothing_changes(personas, churn):
    # A shadow on an environment that has served no logged traffic.
    response = post(personas, {"strategy": "shadow"})
    assert response.status_code == 422
    errors = response.content.decode().split('class="errorlist deploy-errors"')[1]
    assert "has served no logged traffic" in errors.split("</ul>")[0]
    unchanged(churn)


def test_without_javascript_the_model_page_comes_back_with_the_mistake_and_what_was_typed(
    personas, churn
):
    response = post(
        personas,
        {"strategy": "canary", "canary-steps": "50,10", "canary-step_seconds": "77"},
        htmx=False,
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "<title>churn · ModelGate</title>" in page and 'id="panel-deployments"' in page
    assert "must increase" in page
    assert 'name="canary-steps" value="50,10"' in page
    assert 'name="canary-step_seconds" value="77"' in page
    unchanged(churn)


def test_a_second_rollout_while_one_is_in_progress_is_refused_on_the_form(personas, churn):
    assert post(personas, {"strategy": "canary"}).status_code == 200
    before = EnvironmentTransition.objects.count()
    again = post(personas, {"strategy": "ab"})
    assert again.status_code == 422
    assert Deployment.objects.filter(version=churn["v2"]).count() == 1
    assert EnvironmentTransition.objects.count() == before


def test_the_form_without_the_deploy_right_is_the_apis_403_and_invisible_is_404(personas, churn):
    response = browser(personas.viewer).post(
        DEPLOY, {"version": "2", "strategy": "canary"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert browser(personas.outsider).post(DEPLOY, {"version": "2"}).status_code == 404
    unchanged(churn)


def test_the_form_shows_each_strategys_options_under_its_legend(personas, churn):
    page = browser(personas.owner).get("/models/churn/").content.decode()
    form = page.split('class="deploy-form"')[1].split("</form>")[0]
    for strategy, names in {
        "blue_green": ("hold_seconds", "thresholds"),
        "canary": ("steps", "step_seconds", "min_requests", "metric", "thresholds"),
        "shadow": ("shadow_share", "duration_seconds", "end_after_labels", "min_requests"),
        "ab": ("share", "duration_seconds", "end_after_labels", "step_seconds", "metric"),
    }.items():
        fieldset = form.split(f'data-strategy="{strategy}"')[1].split("</fieldset>")[0]
        for name in names:
            assert f'name="{strategy}-{name}"' in fieldset, (strategy, name)
    # The threshold names and their meaning are said where they are typed.
    assert "latency_p99_ratio" in form and "min_requests" in form
