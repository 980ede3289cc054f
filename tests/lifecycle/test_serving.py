"""The serving endpoint: MLflow formats, validation, routing, auth, logging hand-off, metrics."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import skops.io as sio
from django.test import Client
from knox.models import AuthToken

from lifecycle import deployments, prediction_log, scoring, selectors, serving, serving_logs
from lifecycle.models import ServingLogBatch
from monitoring.models import PredictionBatch
from tests.conftest import (
    FEATURES,
    classifier_bytes,
    client_for,
    grant,
    ready_version,
    training_frame,
)
from tests.lifecycle.deploy_support import (
    approve,
    deploy,
    environment,
    fresh,
    low_risk_model,
    new_version,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("config.serve_urls")]

URL = "/serve/churn/production/invocations"
ROWS = training_frame(20, seed=5)[FEATURES]


@pytest.fixture(autouse=True)
def _fresh_serving_state(settings):
    settings.SERVE_POLL_SECONDS = 0  # no poller thread here: read routing on every request
    settings.SERVE_AUTH_TTL_SECONDS = 0
    serving.STATE.routing.clear()
    serving.STATE.models.clear()
    serving.STATE.auth.clear()
    sent: list[dict] = []
    prediction_log.LOG.sender = lambda task, message: sent.append(message)
    prediction_log.LOG._take()  # drop rows another test left behind
    yield sent
    prediction_log.LOG.sender = None


@pytest.fixture
def sent(_fresh_serving_state):
    return _fresh_serving_state


def token_for(user, **kwargs) -> str:
    return AuthToken.objects.create(user=user, **kwargs)[1]


@pytest.fixture
def served(personas):
    model = low_risk_model(personas)
    v1 = approve(new_version(model, personas), personas)
    production = environment(model)
    deploy(production, v1, personas.owner)
    caller = grant(model, personas.bot, "serving")
    return {"model": model, "v1": v1, "production": fresh(production), "token": token_for(caller)}


def post(token: str | None, body, *, content_type="application/json", url=URL, **headers):
    client = Client()
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Token {token}"
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type, **headers)


def expected(rows: pd.DataFrame, seed: int = 0) -> list:
    estimator = sio.loads(
        classifier_bytes(seed), trusted=sio.get_untrusted_types(data=classifier_bytes(seed))
    )
    return estimator.predict(rows).tolist()


# --- formats ---------------------------------------------------------------------------


def _bodies(rows: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    records = rows.to_dict(orient="records")
    split = {"columns": list(rows.columns), "data": rows.values.tolist()}
    return {
        "dataframe_split": (json.dumps({"dataframe_split": split}).encode(), "application/json"),
        "dataframe_records": (
            json.dumps({"dataframe_records": records}).encode(),
            "application/json",
        ),
        "instances": (json.dumps({"instances": records}).encode(), "application/json"),
        "inputs (columns)": (
            json.dumps({"inputs": rows.to_dict(orient="list")}).encode(),
            "application/json",
        ),
        "inputs (rows)": (
            json.dumps({"inputs": rows.values.tolist()}).encode(),
            "application/json",
        ),
        "csv": (rows.to_csv(index=False).encode(), "text/csv"),
    }


@pytest.mark.parametrize(
    "fmt",
    [
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs (columns)",
        "inputs (rows)",
        "csv",
    ],
)
def test_every_mlflow_format_gets_the_models_own_predictions(served, fmt):
    body, kind = _bodies(ROWS)[fmt]
    response = post(served["token"], body, content_type=kind)
    assert response.status_code == 200, response.content
    assert response.json() == {"predictions": expected(ROWS)}
    assert response["X-Model-Version"] == "1"
    assert response["X-Request-ID"]


def test_columns_in_another_order_are_accepted_and_extra_columns_ignored(served):
    shuffled = ROWS[["score", "income", "age"]].assign(customer="c-1")
    body = {
        "dataframe_split": {"columns": list(shuffled.columns), "data": shuffled.values.tolist()}
    }
    response = post(served["token"], body)
    assert response.status_code == 200
    assert response.json()["predictions"] == expected(ROWS)


def test_details_bring_the_version_and_the_probabilities(served):
    body = {
        "dataframe_records": ROWS.head(3).to_dict(orient="records"),
        "params": {"details": True},
    }
    response = post(served["token"], body, HTTP_X_REQUEST_ID="req-42")
    payload = response.json()
    assert payload["version"] == 1 and payload["request_id"] == "req-42"
    assert payload["environment"] == "production" and payload["classes"] == [0, 1]
    estimator = sio.loads(
        classifier_bytes(), trusted=sio.get_untrusted_types(data=classifier_bytes())
    )
    np.testing.assert_allclose(
        payload["probabilities"], estimator.predict_proba(ROWS.head(3)), atol=1e-6
    )
    assert response["X-Request-ID"] == "req-42"


# --- bad input --------------------------------------------------------------------------


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.mark.parametrize(
    ("records", "code", "column"),
    [
        ([{"age": 40.0, "income": 1000.0}], "missing_column", "score"),
        ([{"age": "forty", "income": 1000.0, "score": 0.2}], "wrong_type", "age"),
        ([{"age": True, "income": 1000.0, "score": 0.2}], "wrong_type", "age"),
        ([{"age": 40.0, "income": None, "score": 0.2}], "missing_value", "income"),
        (
            [{"age": 40.0, "income": 1.0, "score": 0.2}, {"age": 41.0, "income": 2.0}],
            "missing_value",
            "score",
        ),
    ],
)
def test_input_that_breaks_the_signature_is_a_400_naming_the_column(served, records, code, column):
    response = post(served["token"], {"dataframe_records": records})
    assert response.status_code == 400
    error = _error(response)
    assert (error["code"], error["details"]["column"]) == (code, column)
    assert column in error["message"]


def test_nan_and_infinity_are_refused_where_the_model_cannot_take_them(served):
    nan = b'{"dataframe_split": {"columns": ["age", "income", "score"], "data": [[NaN, 1.0, 0.5]]}}'
    error = _error(post(served["token"], nan))
    assert (error["code"], error["details"]["column"]) == ("missing_value", "age")
    inf = b'{"dataframe_split": {"columns": ["age", "income", "score"], "data": [[1.0, Infinity, 0.5]]}}'
    error = _error(post(served["token"], inf))
    assert (error["code"], error["details"]["column"]) == ("non_finite", "income")


def test_a_model_that_takes_missing_values_gets_them(personas, served):
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = training_frame(200)
    forest = HistGradientBoostingClassifier(max_iter=20).fit(frame[FEATURES], frame["label"])
    model = served["model"]
    staging = environment(model, "staging")
    hgb = ready_version(model, personas.bot, artifact=sio.dumps(forest))
    deploy(staging, hgb, personas.owner)
    body = {"dataframe_split": {"columns": FEATURES, "data": [[None, 1000.0, 0.5]]}}
    response = post(served["token"], body, url="/serve/churn/staging/invocations")
    assert response.status_code == 200, response.content
    assert (
        response.json()["predictions"]
        == forest.predict(
            pd.DataFrame({"age": [np.nan], "income": [1000.0], "score": [0.5]})
        ).tolist()
    )


@pytest.mark.parametrize(
    ("body", "kind", "status", "code"),
    [
        (b"", "application/json", 400, "empty_body"),
        (b"{not json", "application/json", 400, "malformed_request"),
        (b'{"rows": []}', "application/json", 400, "unknown_format"),
        (b'{"instances": [], "inputs": []}', "application/json", 400, "unknown_format"),
        (b'{"dataframe_records": []}', "application/json", 400, "no_rows"),
        (
            b'{"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}',
            "application/json",
            400,
            "malformed_request",
        ),
        (b"<xml/>", "application/xml", 415, "unsupported_media_type"),
        (b"age,income\n1,2,3\n", "text/csv", 400, "malformed_request"),
    ],
)
def test_malformed_bodies_are_4xx_in_the_one_error_shape(served, body, kind, status, code):
    response = post(served["token"], body, content_type=kind)
    assert response.status_code == status
    assert _error(response)["code"] == code


def test_a_million_rows_are_refused_by_size_before_parsing(served, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(scoring, "parse_body", never)
    body = b'{"inputs": [' + b"[40.0,1000.0,0.5]," * 999_999 + b"[40.0,1000.0,0.5]]}"
    response = post(served["token"], body)
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


def test_more_rows_than_the_limit_are_refused(served, settings):
    settings.SERVE_MAX_ROWS = 5
    response = post(served["token"], {"inputs": ROWS.values.tolist()})
    assert response.status_code == 413 and _error(response)["code"] == "too_many_rows"


def test_only_post_is_served(served):
    client = Client()
    response = client.get(URL, HTTP_AUTHORIZATION=f"Token {served['token']}")
    assert response.status_code == 405


# --- auth -----------------------------------------------------------------------------------


def test_no_token_or_a_bad_or_expired_token_is_a_401(served, personas):
    body = {"inputs": ROWS.head(1).values.tolist()}
    assert post(None, body).status_code == 401
    assert post("not-a-token", body).status_code == 401
    expired = token_for(personas.bot, expiry=timedelta(seconds=-1))
    assert post(expired, body).status_code == 401


def test_a_token_without_the_serve_right_never_gets_a_prediction(served, personas):
    body = {"inputs": ROWS.head(1).values.tolist()}
    for user in (personas.outsider, personas.viewer):
        response = post(token_for(user), body)
        assert response.status_code == 404 and "predictions" not in response.json()
    owner = post(token_for(personas.owner), body)  # the owner holds every right
    assert owner.status_code == 200
    assert post(served["token"], body, url="/serve/churn/nowhere/invocations").status_code == 404
    assert post(served["token"], body, url="/serve/ghost/production/invocations").status_code == 404


def test_a_revoked_grant_stops_serving_within_the_cache_ttl(served, personas, settings):
    settings.SERVE_AUTH_TTL_SECONDS = 60
    body = {"inputs": ROWS.head(1).values.tolist()}
    assert post(served["token"], body).status_code == 200
    from registry import services as registry_services

    registry_services.registered_model_revoke(
        actor=personas.owner, model=served["model"], user=personas.bot
    )
    assert post(served["token"], body).status_code == 200  # cached for the TTL
    serving.STATE.auth.clear()  # the TTL elapsed
    assert post(served["token"], body).status_code == 404


def test_an_environment_with_nothing_deployed_says_so(served, personas):
    environment(served["model"], "staging")
    response = post(
        served["token"], {"inputs": [[1.0, 2.0, 3.0]]}, url="/serve/churn/staging/invocations"
    )
    assert response.status_code == 409 and _error(response)["code"] == "no_version_deployed"


# --- routing ----------------------------------------------------------------------------------


def test_the_routing_hash_splits_within_tolerance_and_never_moves_an_id_back():
    ids = [f"req-{i}" for i in range(20_000)]
    share = 0.1
    to_candidate = [scoring.goes_to_candidate(i, "7", share) for i in ids]
    n, p = len(ids), share
    assert abs(sum(to_candidate) - n * p) < 4 * (n * p * (1 - p)) ** 0.5
    wider = [scoring.goes_to_candidate(i, "7", 0.3) for i in ids]
    assert all(w for w, c in zip(wider, to_candidate, strict=True) if c)
    assert [scoring.goes_to_candidate(i, "7", share) for i in ids] == to_candidate


def test_a_split_sends_each_request_id_to_one_version_always(served, personas):
    v2 = approve(new_version(served["model"], personas, seed=1), personas)
    deployments.environment_split_set(
        actor=personas.owner, environment=served["production"], candidate=v2, share=0.5
    )
    body = {"inputs": ROWS.head(1).values.tolist()}
    seen = {}
    for i in range(60):
        first = post(served["token"], body, HTTP_X_REQUEST_ID=f"caller-{i}")["X-Model-Version"]
        again = post(served["token"], body, HTTP_X_REQUEST_ID=f"caller-{i}")["X-Model-Version"]
        assert first == again
        seen[f"caller-{i}"] = first
        expected_version = (
            "2"
            if scoring.goes_to_candidate(f"caller-{i}", str(served["production"].pk), 0.5)
            else "1"
        )
        assert first == expected_version
    assert set(seen.values()) == {"1", "2"}


def test_a_deployment_and_a_rollback_reach_the_routing_at_once(served, personas):
    v2 = approve(new_version(served["model"], personas, seed=1), personas)
    body = {"inputs": ROWS.head(1).values.tolist()}
    assert post(served["token"], body)["X-Model-Version"] == "1"
    deploy(served["production"], v2, personas.owner)
    assert post(served["token"], body)["X-Model-Version"] == "2"
    deployments.environment_rollback(
        actor=personas.owner, environment=fresh(served["production"]), reason="test"
    )
    assert post(served["token"], body)["X-Model-Version"] == "1"


def test_the_routing_copy_is_reused_until_it_is_older_than_the_poll(
    served, django_assert_num_queries
):
    table = serving.RoutingTable()
    table.reload()
    with django_assert_num_queries(0):
        assert table.get("churn", "production", max_age=60).stable_number == 1
    with django_assert_num_queries(1):
        assert table.get("churn", "production", max_age=0).stable_number == 1


def test_a_served_request_costs_no_sql_once_routing_and_auth_are_cached(
    served, settings, django_assert_num_queries
):
    settings.SERVE_POLL_SECONDS = 60
    settings.SERVE_AUTH_TTL_SECONDS = 60
    body = {"inputs": ROWS.head(1).values.tolist()}
    assert post(served["token"], body).status_code == 200
    with django_assert_num_queries(0):
        assert post(served["token"], body).status_code == 200


# --- the serving process's report ---------------------------------------------------------


def test_the_poller_warms_what_is_routable_and_reports_it(served):
    state = serving.ServingState()
    state.poll_once()
    assert state.load_wanted() == [served["v1"].pk]
    state.report()
    from lifecycle.models import ServingProcess

    row = ServingProcess.objects.get(token=state.token)
    assert served["v1"].pk in row.warmed
    state.forget_me()
    assert not ServingProcess.objects.filter(token=state.token).exists()


# --- prediction logging ---------------------------------------------------------------------


def test_served_predictions_become_prediction_batches_and_a_log(served, sent, personas):
    body = {"dataframe_records": ROWS.head(3).to_dict(orient="records")}
    post(served["token"], body, HTTP_X_REQUEST_ID="multi")
    post(served["token"], {"inputs": ROWS.head(1).values.tolist()}, HTTP_X_REQUEST_ID="single")
    post(served["token"], {"dataframe_records": [{"age": 1.0, "income": "x", "score": 0.1}]})
    assert prediction_log.LOG.flush() == 5
    assert len(sent) == 1
    message = json.loads(json.dumps(sent[0]))  # what the broker carries
    batch = serving_logs.serving_log_ingest(message=message)
    assert batch.row_count == 5 and batch.error_count == 1
    stored = PredictionBatch.objects.get(version=served["v1"])
    assert stored.row_count == 4 and stored.created_by == personas.bot
    assert stored.batch_id == message["batch_id"]
    from common.storage import cached_blob_path

    with cached_blob_path(stored.storage_key) as path:
        table = pq.read_table(path)
    assert sorted(table.column("request_id").to_pylist()) == [
        "multi:0",
        "multi:1",
        "multi:2",
        "single",
    ]
    assert set(table.column_names) >= {"timestamp", "prediction", "probability", *FEATURES}
    # A redelivered message counts nothing twice.
    assert serving_logs.serving_log_ingest(message=message).pk == batch.pk
    assert PredictionBatch.objects.count() == 1 and ServingLogBatch.objects.count() == 1
    errors = selectors.serving_errors(environment=served["production"])
    assert errors[0]["code"] == "wrong_type" and errors[0]["column"] == "income"
    assert errors[0]["count"] == 1


def test_the_prediction_log_is_filtered_and_exported(served, sent, personas, settings):
    for i in range(3):
        post(served["token"], {"inputs": ROWS.head(1).values.tolist()}, HTTP_X_REQUEST_ID=f"ok-{i}")
    post(
        served["token"],
        {"dataframe_records": [{"age": 1.0, "income": 2.0}]},
        HTTP_X_REQUEST_ID="bad",
    )
    prediction_log.LOG.flush()
    for message in sent:
        serving_logs.serving_log_ingest(message=json.loads(json.dumps(message)))
    api = client_for(personas.viewer)
    base = "/api/v1/models/churn/environments/production/log"
    settings.ROOT_URLCONF = "config.urls"  # the API lives on the web process
    errors = api.get(f"{base}?error=true&export=csv")
    everything = api.get(f"{base}?export=parquet")
    none = api.get(f"{base}?version=9&export=csv")
    bad = api.get(f"{base}?since=yesterday")
    assert errors.status_code == 200, errors.content
    frame = pd.read_csv(io.BytesIO(errors.content))
    assert frame["request_id"].tolist() == ["bad"]
    assert frame["error_code"].tolist() == ["missing_column"]
    assert frame["error_column"].tolist() == ["score"]
    table = pq.read_table(io.BytesIO(everything.content))
    assert table.num_rows == 4 and set(table.column("version").to_pylist()) == {1}
    assert none["X-Row-Count"] == "0"
    assert bad.status_code == 400


def test_a_buffer_waits_for_the_broker_and_keeps_its_batch_ids(served, settings):
    failures = []
    log = prediction_log.PredictionLog()

    def broker_down(task, message):
        failures.append(message["batch_id"])
        raise ConnectionError("broker down")

    log.sender = broker_down
    arrays = {"age": np.array([1.0]), "income": np.array([2.0]), "score": np.array([0.3])}
    log.record(
        environment_id=1,
        version_id=1,
        user_id=None,
        request_id="r",
        latency=0.01,
        features=arrays,
        predictions=[1],
    )
    assert log.flush() == 0 and log.waiting() == 1
    delivered = []
    log.sender = lambda task, message: delivered.append(message)
    assert log.flush() == 1 and log.waiting() == 0
    assert delivered[0]["batch_id"] == failures[0]


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_count_requests_errors_and_latency_per_version(served):
    post(served["token"], {"inputs": ROWS.head(1).values.tolist()})
    post(served["token"], {"inputs": [[1.0]]})
    post(None, {"inputs": [[1.0]]})
    text = Client().get("/metrics").content.decode()
    assert (
        'modelgate_serving_requests_total{environment="production",model="churn",status="200",version="1"}'
        in text
    )
    assert 'status="400",version="1"' in text
    assert 'modelgate_serving_rejected_total{status="401"}' in text
    assert 'modelgate_serving_request_duration_seconds_bucket{environment="production"' in text


# --- batching ----------------------------------------------------------------------------------


class _CountingEstimator:
    """Answers x mod 2 after a short pause; refuses negative inputs."""

    classes_ = np.array([0, 1])

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, frame):
        self.calls += 1
        import time

        time.sleep(0.002)
        x = frame["x"].to_numpy()
        if (x < 0).any():
            raise ValueError("negative input")
        p = (x % 2).astype(float)
        return np.column_stack([1 - p, p])


def test_concurrent_requests_share_predictions_and_each_gets_its_own_rows():
    import random
    import threading

    estimator = _CountingEstimator()
    model = serving.LoadedModel(1, 1, "m", "classification", estimator, [], [0, 1], 1, True, None)
    wrong: list = []
    rng = random.Random(0)
    plans = [[(rng.randint(1, 5), rng.random() < 0.03) for _ in range(150)] for _ in range(8)]

    def client(k: int) -> None:
        for i, (n, bad) in enumerate(plans[k]):
            values = np.array([k * 10_000 + i * 7 + j for j in range(n)], dtype=float)
            if bad:
                values[0] = -1
            try:
                predictions, proba = model.predict_rows({"x": values}, n)
            except ValueError:
                if not bad:
                    wrong.append(("refused", k, i))
                continue
            if bad or predictions != [int(v % 2) for v in values] or len(proba) != n:
                wrong.append(("answer", k, i))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert wrong == []
    requests = sum(len(p) for p in plans)
    assert estimator.calls < requests  # batched, yet every request got exactly its rows


def test_an_unreachable_database_is_a_503_in_the_error_shape(served, monkeypatch):
    from django.db import OperationalError

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(serving.STATE.routing, "get", down)
    response = post(served["token"], {"inputs": ROWS.head(1).values.tolist()})
    assert response.status_code == 503 and _error(response)["code"] == "unavailable"


# --- a pipeline with integer and text inputs ------------------------------------------------

CREDIT_INPUTS = [
    {"name": "income", "dtype": "float64"},
    {"name": "debt_ratio", "dtype": "float64"},
    {"name": "credit_history_years", "dtype": "float64"},
    {"name": "open_accounts", "dtype": "int64"},
    {"name": "late_payments", "dtype": "int64"},
    {"name": "employment", "dtype": "string"},
]


@pytest.fixture
def credit(personas, served):
    from sklearn.linear_model import LogisticRegression

    from demo import samples

    train = samples.credit_data(600, seed=3)
    pipeline = samples.credit_pipeline(LogisticRegression(max_iter=300))
    pipeline.fit(train[samples.CREDIT_FEATURES], train[samples.CREDIT_TARGET])
    version = ready_version(
        served["model"],
        personas.bot,
        artifact=sio.dumps(pipeline),
        signature_inputs=CREDIT_INPUTS,
    )
    staging = environment(served["model"], "staging")
    deploy(staging, version, personas.owner)
    rows = samples.credit_data(30, seed=4)[samples.CREDIT_FEATURES]
    return {
        "pipeline": pipeline,
        "rows": rows,
        "url": "/serve/churn/staging/invocations",
        "version": version,
    }


def test_a_pipeline_with_text_and_integer_inputs_answers_as_the_pipeline_does(served, credit):
    rows = credit["rows"]
    expected_predictions = credit["pipeline"].predict(rows).tolist()
    records = json.loads(rows.to_json(orient="records"))
    response = post(served["token"], {"dataframe_records": records}, url=credit["url"])
    assert response.json() == {"predictions": expected_predictions}
    csv = post(
        served["token"], rows.to_csv(index=False), content_type="text/csv", url=credit["url"]
    )
    assert csv.json() == {"predictions": expected_predictions}


def test_the_pipeline_is_served_through_its_column_plan_with_the_pipelines_answers(served, credit):
    rows = credit["rows"].copy()
    rows.loc[rows.index[::4], "employment"] = "astronaut"  # a category never seen in training
    records = json.loads(rows.to_json(orient="records"))
    body = {"dataframe_records": records, "params": {"details": True}}
    answer = post(served["token"], body, url=credit["url"]).json()
    assert serving.STATE.models.get(credit["version"].pk).plan is not None  # no DataFrame
    assert answer["predictions"] == credit["pipeline"].predict(rows).tolist()
    assert answer["probabilities"] == np.round(credit["pipeline"].predict_proba(rows), 6).tolist()
    for i, record in enumerate(records[:5]):  # one row at a time too
        one = post(served["token"], {"dataframe_records": [record]}, url=credit["url"]).json()
        assert one["predictions"] == [answer["predictions"][i]]


def test_a_plan_that_would_answer_differently_is_not_used(served, credit, monkeypatch):
    from lifecycle import pipeline_plan

    real = pipeline_plan.column_plan

    def off_by_a_little(estimator, inputs):
        plan = real(estimator, inputs)
        scale, columns = plan.parts[0]
        return pipeline_plan.ColumnPlan(
            ((lambda block: scale(block) * (1 + 1e-12), columns), *plan.parts[1:]), plan.rest
        )

    monkeypatch.setattr(pipeline_plan, "column_plan", off_by_a_little)
    serving.STATE.models.clear()
    model = serving.STATE.models.get(credit["version"].pk)
    assert model.plan is None  # checked against the pipeline when loaded, and refused
    rows = credit["rows"]
    records = json.loads(rows.to_json(orient="records"))
    response = post(served["token"], {"dataframe_records": records}, url=credit["url"])
    assert response.json() == {"predictions": credit["pipeline"].predict(rows).tolist()}


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("open_accounts", 2.5, "wrong_type"),
        ("open_accounts", None, "missing_value"),
        ("employment", 7, "wrong_type"),
        ("employment", None, "missing_value"),
        ("income", "50k", "wrong_type"),
    ],
)
def test_integer_and_text_inputs_are_checked_by_type(served, credit, column, value, code):
    record = json.loads(credit["rows"].head(1).to_json(orient="records"))[0]
    record[column] = value
    response = post(served["token"], {"dataframe_records": [record]}, url=credit["url"])
    assert response.status_code == 400
    error = _error(response)
    assert (error["code"], error["details"]["column"]) == (code, column)
