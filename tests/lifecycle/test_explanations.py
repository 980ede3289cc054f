"""Per-prediction explanations: the maths against scikit-learn, the worker job, the panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from common.errors import DomainError
from common.models import AuditEvent
from lifecycle import attribution, services
from lifecycle.models import Explanation
from lifecycle.tasks import heavy_explain
from monitoring import services as monitoring_services
from tests.conftest import ready_version, training_frame
from tests.evidence_support import upload


def applicants(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "age": rng.integers(18, 80, n).astype(float),
            "sex": rng.choice(["F", "M"], n),
            "age_band": rng.choice(["18-30", "31-50", "51+"], n),
        }
    )
    y = ((frame["income"] + 8 * (frame["sex"] == "M") + rng.normal(0, 5, n)) > 54).astype(int)
    return frame, y


FEATURES = ["income", "age", "sex", "age_band"]


def preprocessed(final, drop=None):
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["income", "age"]),
            ("cat", OneHotEncoder(drop=drop, handle_unknown="ignore"), ["sex", "age_band"]),
        ]
    )
    return Pipeline([("pre", columns), ("model", final)])


@pytest.mark.parametrize("drop", [None, "first"])
def test_linear_contributions_plus_the_intercept_are_the_decision_function(drop):
    frame, y = applicants()
    model = preprocessed(LogisticRegression(max_iter=500), drop=drop).fit(frame, y)
    rows = frame.head(25)
    result = attribution.linear_contributions(model, rows[FEATURES], features=FEATURES)
    assert result["names"] == FEATURES and result["grouped_by_input"] is True
    total = result["contributions"].sum(axis=1) + result["base"]
    np.testing.assert_allclose(total, model.decision_function(rows), rtol=0, atol=1e-10)
    # Each contribution is coefficient x transformed value, added up per input feature.
    Xt = model[:-1].transform(rows)
    coef = model[-1].coef_[0]
    n_sex = 2 if drop is None else 1
    np.testing.assert_allclose(result["contributions"][:, 0], coef[0] * Xt[:, 0], atol=1e-12)
    np.testing.assert_allclose(
        result["contributions"][:, 2], (coef[2 : 2 + n_sex] * Xt[:, 2 : 2 + n_sex]).sum(axis=1)
    )
    np.testing.assert_allclose(result["base"], model[-1].intercept_[0])


def test_a_linear_regression_s_contributions_add_up_to_its_prediction():
    frame, _ = applicants()
    target = 3 * frame["income"] - frame["age"]
    model = make_pipeline(StandardScaler(), Ridge()).fit(frame[["income", "age"]], target)
    report = attribution.explain(model, frame.head(10), features=["income", "age"], reference=frame)
    assert report["method"] == "linear" and report["additivity_gap"] < 1e-9
    bare = LinearRegression().fit(frame[["income", "age"]], target)
    result = attribution.linear_contributions(
        bare, frame.head(5)[["income", "age"]], features=["income", "age"]
    )
    np.testing.assert_allclose(
        result["contributions"].sum(axis=1) + result["base"],
        bare.predict(frame.head(5)[["income", "age"]]),
    )


def test_a_multiclass_linear_model_explains_the_predicted_class():
    frame, _ = applicants()
    y = frame["age_band"]
    model = preprocessed(LogisticRegression(max_iter=500)).fit(frame[FEATURES], y)
    # age_band explains itself here; what matters is that the sum is the class's score.
    rows = frame.head(12)[FEATURES]
    result = attribution.linear_contributions(model, rows, features=FEATURES)
    predicted = model.predict(rows)
    column = [list(model.classes_).index(p) for p in predicted]
    expected = model.decision_function(rows)[np.arange(len(rows)), column]
    np.testing.assert_allclose(result["contributions"].sum(axis=1) + result["base"], expected)


def test_other_models_get_baseline_replacement_on_the_positive_class_probability():
    frame, y = applicants()
    model = preprocessed(RandomForestClassifier(n_estimators=30, random_state=0)).fit(frame, y)
    rows = frame.head(6)
    report = attribution.explain(model, rows, features=FEATURES, reference=frame, classes=[0, 1])
    assert report["method"] == "baseline_replacement" and report["additivity_gap"] is None
    assert report["score"] == "probability of 1"
    reference = attribution.reference_values(frame, FEATURES)
    first = report["rows"][0]
    sex = next(c for c in first["contributions"] if c["feature"] == "sex")
    replaced = rows.head(1).copy()
    replaced["sex"] = reference["sex"]
    expected = model.predict_proba(rows.head(1))[0, 1] - model.predict_proba(replaced)[0, 1]
    assert sex["contribution"] == pytest.approx(expected)
    assert first["score"] == pytest.approx(model.predict_proba(rows.head(1))[0, 1])


def test_rows_without_the_model_s_columns_are_refused_with_the_reason():
    frame, y = applicants()
    model = preprocessed(LogisticRegression(max_iter=500)).fit(frame, y)
    with pytest.raises(attribution.ExplanationInputError, match="no column"):
        attribution.explain(model, frame.drop(columns=["sex"]), features=FEATURES, reference=frame)


# --- the job --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_worker_explains_logged_rows_and_the_contributions_match_the_model(model, personas):
    version = ready_version(model, personas.bot)
    logged = training_frame(60, seed=5).drop(columns=["label"])
    logged["request_id"] = [f"r{i}" for i in range(len(logged))]
    logged["prediction"] = 0
    monitoring_services.prediction_batch_ingest(
        actor=personas.bot,
        version=version,
        batch_id="b1",
        table=pa.Table.from_pandas(logged, preserve_index=False),
    )
    job = services.explanation_start(actor=personas.bot, version=version, sample_size=8)
    heavy_explain.run(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.source == "prediction_log"
    result = job.result
    assert result["method"] == "linear" and len(result["rows"]) == 8
    assert result["additivity_gap"] < 1e-9
    for row in result["rows"]:
        assert row["inputs"] in logged[["age", "income", "score"]].to_dict("records")
        total = sum(c["contribution"] for c in row["contributions"]) + row["rest"]
        assert row["base"] + total == pytest.approx(row["score"])
    assert AuditEvent.objects.filter(action="lifecycle.explanation.completed").exists()


@pytest.mark.django_db
def test_without_logged_rows_it_explains_evaluation_rows_and_without_either_it_says_why(
    model, personas
):
    version = ready_version(model, personas.bot)
    job = services.explanation_start(actor=personas.bot, version=version, sample_size=3)
    heavy_explain.run(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "no usable logged predictions" in job.error

    dataset = upload(model, personas.bot, training_frame(100, seed=2))
    evaluation = services.evaluation_start(
        actor=personas.bot, version=version, dataset=dataset, target_column="label"
    )
    from lifecycle.tasks import heavy_evaluate

    heavy_evaluate.run(evaluation.pk)
    job = services.explanation_start(actor=personas.bot, version=version, sample_size=3)
    heavy_explain.run(job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.source == "evaluation_dataset"


@pytest.mark.django_db
def test_only_who_may_evaluate_may_ask_and_the_sample_is_bounded(model, personas):
    version = ready_version(model, personas.bot)
    with pytest.raises(DomainError) as excinfo:
        services.explanation_start(actor=personas.viewer, version=version)
    assert excinfo.value.status == 403
    with pytest.raises(DomainError) as excinfo:
        services.explanation_start(actor=personas.bot, version=version, sample_size=500)
    assert excinfo.value.status == 400 and excinfo.value.details == {"sample_size": 500}
    assert not Explanation.objects.exists()


def test_the_importance_chart_keeps_the_sign_of_each_importance():
    from types import SimpleNamespace

    from lifecycle.charts import importance_chart

    importance = {
        "scoring": "accuracy",
        "features": [
            {"feature": "score", "mean": 0.2, "std": 0.01},
            {"feature": "age", "mean": -0.05, "std": 0.01},
        ],
    }
    spec = importance_chart(importance, None, "", SimpleNamespace(number=1))
    bars = spec["data"][0]
    assert dict(zip(bars["y"], bars["x"], strict=True)) == {"age": -0.05, "score": 0.2}
    assert bars["marker"]["color"] == ["#b3261e", "#2453b3"]
    assert spec["layout"]["xaxis"]["zeroline"] is True


@pytest.mark.django_db
def test_logged_rows_whose_inputs_the_data_policy_hashes_are_not_explained(
    model, personas, settings
):
    from monitoring.data_policy import data_policy_update

    settings.MONITORING_HASH_KEY = "k" * 40

    version = ready_version(model, personas.bot)
    logged = training_frame(30, seed=5).drop(columns=["label"])
    logged["request_id"] = [f"r{i}" for i in range(len(logged))]
    logged["prediction"] = 0
    monitoring_services.prediction_batch_ingest(
        actor=personas.bot,
        version=version,
        batch_id="b1",
        table=pa.Table.from_pandas(logged, preserve_index=False),
    )
    data_policy_update(
        actor=personas.owner,
        model=model,
        retention_days=None,
        dropped_columns=[],
        hashed_columns=["income"],
    )
    job = services.explanation_start(actor=personas.bot, version=version, sample_size=3)
    heavy_explain.run(job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "data policy drops or hashes" in job.error


# --- the API ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_queues_lists_and_returns_explanations_with_the_standard_refusals(model, personas):
    from tests.conftest import client_for

    version = ready_version(model, personas.bot)
    url = "/api/v1/models/credit/versions/1/explanations/"
    bot = client_for(personas.bot)
    queued = bot.post(url, {"sample_size": 5}, format="json")
    assert queued.status_code == 202, queued.json()
    body = queued.json()
    assert (body["status"], body["sample_size"], body["version"]) == ("queued", 5, 1)

    too_many = bot.post(url, {"sample_size": 51}, format="json")
    assert too_many.status_code == 400 and "sample_size" in too_many.json()["error"]["details"]
    viewer = client_for(personas.viewer)
    refused = viewer.post(url, {}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert client_for(personas.outsider).get(url).status_code == 404
    assert Explanation.objects.filter(version=version).count() == 1

    heavy_explain.run(body["id"])  # no rows yet: a final failure that says why
    listed = viewer.get(url).json()
    assert listed["count"] == 1 and listed["results"][0]["status"] == "failed"
    detail = viewer.get(f"{url}{body['id']}/").json()
    assert "no usable logged predictions" in detail["error"]
