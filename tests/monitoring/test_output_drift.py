"""Prediction drift, label drift, row-count windows and the exact-KS (raw rows) method.

Every number a check stores is compared with scipy on the same rows, or with the
drift engine on a reference rebuilt here from the model and its training data.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from scipy import stats

from common.models import AuditEvent
from monitoring import drift, outputs, profiles, services
from monitoring.checks import check_run_execute
from monitoring.models import Alert, ReferenceProfile
from registry.artifacts import load_estimator
from tests.conftest import FEATURES, create_model, grant, ready_version, training_frame
from tests.monitoring.conftest import prediction_frame, upload_training
from tests.monitoring.test_checks import END, ingest, labels, make_monitor, run_check

pytestmark = pytest.mark.django_db


def estimator_of(version: Any) -> Any:
    from common.storage import cached_blob_path

    with cached_blob_path(version.artifact_key) as path:
        return load_estimator(path)[0]


def model_frame(version: Any, n: int, *, seed: int, skew: float = 1.0, prefix: str) -> Any:
    """A window whose predictions and scores come from the model itself; ``skew`` < 1
    moves the ``score`` feature (the one the label follows) towards 1."""
    frame = prediction_frame(n, seed=seed, prefix=prefix)
    frame["score"] = frame["score"] ** skew
    estimator = estimator_of(version)
    frame["prediction"] = estimator.predict(frame[FEATURES])
    frame["probability"] = estimator.predict_proba(frame[FEATURES])[:, 1]
    return frame


# --- the reference ----------------------------------------------------------------------


def test_the_baseline_holds_the_models_outputs_on_its_training_rows(
    monitored: Any, personas: Any
) -> None:
    row = profiles.reference_profile_ensure(actor=personas.owner, version=monitored)
    assert row.outputs_columns == ["prediction", "probability", "label"]
    assert row.outputs_note == ""
    reference = profiles.outputs_profile_load(row)
    train = training_frame(n=2000)
    estimator = estimator_of(monitored)
    predicted = estimator.predict(train[FEATURES])
    counts = dict(zip(*np.unique(predicted.astype(str), return_counts=True), strict=True))
    prediction = reference.columns["prediction"]
    assert dict(zip(prediction.labels, prediction.counts.tolist(), strict=True)) == counts
    label = reference.columns["label"]
    expected = train["label"].astype(str).value_counts().to_dict()
    assert dict(zip(label.labels, label.counts.tolist(), strict=True)) == expected
    np.testing.assert_array_equal(
        reference.columns["probability"].values,
        np.sort(estimator.predict_proba(train[FEATURES])[:, 1]),
    )
    built = AuditEvent.objects.get(action="monitoring.profile.build", object_id=str(row.pk))
    assert built.after["outputs_sha256"] == row.outputs_sha256 != ""


def test_class_labels_match_across_floats_ints_and_booleans() -> None:
    as_floats = outputs.class_labels(np.array([0.0, 1.0, 1.0]))
    as_ints = outputs.class_labels(np.array([0, 1, 1]))
    as_bools = outputs.class_labels(np.array([False, True, True]))
    for series in (as_floats, as_bools):
        assert list(series.astype(str)) == list(as_ints.astype(str)) == ["0", "1", "1"]
    assert list(outputs.class_labels(np.array([0.5, 1.0])).astype(str)) == ["0.5", "1.0"]


# --- prediction drift -------------------------------------------------------------------


def test_predictions_of_the_same_population_do_not_drift(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["prediction_drift"])
    ingest(monitored, personas.bot, model_frame(monitored, 3000, seed=21, prefix="s"), "same")
    run = run_check(monitor)
    result = run.output_drift["prediction"]
    assert result["status"] == "ok", result
    assert {c["column"] for c in result["columns"]} == {"prediction", "probability"}
    assert result["drifted"] == []
    assert not Alert.objects.exists()


@pytest.mark.parametrize("method", ["rows", "summary"])
def test_shifted_predictions_drift_and_open_an_alert(
    monitored: Any, personas: Any, method: str
) -> None:
    monitor = make_monitor(
        monitored, personas.owner, checks=["prediction_drift"], drift_method=method
    )
    window = model_frame(monitored, 3000, seed=22, skew=0.3, prefix="d")
    ingest(monitored, personas.bot, window, "shifted")
    run = run_check(monitor)
    result = run.output_drift["prediction"]
    assert result["source"] == method
    # The reference, rebuilt here: the model's outputs on its training rows.
    train = training_frame(n=2000)
    estimator = estimator_of(monitored)
    reference = outputs.outputs_frame(
        "classification",
        {
            "prediction": estimator.predict(train[FEATURES]),
            "probability": estimator.predict_proba(train[FEATURES])[:, 1],
        },
    )
    current = outputs.outputs_frame(
        "classification",
        {"prediction": window["prediction"], "probability": window["probability"]},
    )
    stored = {c["column"]: c for c in result["columns"]}
    th = drift.Thresholds(p_value=0.05, psi=0.1, drift_share=0.3)
    expected = drift.compare(reference, current, thresholds=th)
    for column in expected.columns:
        assert stored[column.column]["psi"] == pytest.approx(column.psi, rel=1e-12)
        assert stored[column.column]["drifted"] == column.drifted
    if method == "rows":  # raw rows: the KS test of the scores is scipy's, exactly
        ks = stats.ks_2samp(reference["probability"], current["probability"])
        assert stored["probability"]["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12)
        assert stored["probability"]["ks_p_value"] == pytest.approx(ks.pvalue, rel=1e-9)
    else:  # summaries: no KS, a chi-square on the profile's bins instead
        assert stored["probability"]["ks_p_value"] is None
    assert "probability" in result["drifted"]
    alert = Alert.objects.get(monitor=monitor)
    assert alert.kind == "prediction_drift"
    assert alert.message.startswith("Predictions drifted from the training baseline")
    assert "probability" in alert.details["columns"]


def test_a_window_without_scores_judges_the_predictions_alone(
    monitored: Any, personas: Any
) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["prediction_drift"])
    window = model_frame(monitored, 1000, seed=23, prefix="n").drop(columns=["probability"])
    ingest(monitored, personas.bot, window, "no-scores")
    run = run_check(monitor)
    assert [c["column"] for c in run.output_drift["prediction"]["columns"]] == ["prediction"]


# --- label drift ------------------------------------------------------------------------


def test_labels_drift_when_the_class_balance_moves(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["label_drift"])
    window = model_frame(monitored, 2000, seed=24, prefix="l")
    ingest(monitored, personas.bot, window, "p")
    truth = (np.random.default_rng(3).random(2000) < 0.9).astype("int64")  # 90% positive
    labels(
        monitored.registered_model,
        personas.bot,
        pd.DataFrame({"request_id": window["request_id"], "label": truth}),
        "l",
    )
    run = run_check(monitor)
    result = run.output_drift["label"]
    column = result["columns"][0]
    assert column["column"] == "label" and column["kind"] == "categorical"
    # Two-sample chi-square on the contingency table, as scipy computes it.
    train = training_frame(n=2000)["label"]
    table = np.array(
        [
            [np.sum(train == 0), np.sum(train == 1)],
            [np.sum(truth == 0), np.sum(truth == 1)],
        ]
    )
    chi2, p_value, _dof, _expected = stats.chi2_contingency(table)
    assert column["chi2_statistic"] == pytest.approx(chi2, rel=1e-9)
    assert column["chi2_p_value"] == pytest.approx(p_value, rel=1e-6, abs=1e-300)
    assert column["drifted"] is True
    alert = Alert.objects.get(monitor=monitor)
    assert alert.kind == "label_drift" and "label" in alert.message


def test_labels_like_the_training_target_do_not_drift(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["label_drift"])
    window = model_frame(monitored, 2000, seed=25, prefix="k")
    ingest(monitored, personas.bot, window, "p")
    same = training_frame(n=2000, seed=9)["label"].to_numpy()
    labels(
        monitored.registered_model,
        personas.bot,
        pd.DataFrame({"request_id": window["request_id"], "label": same}),
        "l",
    )
    run = run_check(monitor)
    assert run.output_drift["label"]["status"] == "ok"
    assert run.output_drift["label"]["drifted"] == []
    assert not Alert.objects.exists()


def test_without_labels_label_drift_is_not_computable(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["label_drift"])
    ingest(monitored, personas.bot, model_frame(monitored, 500, seed=26, prefix="u"), "p")
    run = run_check(monitor)
    assert run.output_drift["label"] == {"status": "not_computable", "reason": "no labelled rows"}


def test_regression_outputs_are_numeric_and_ks_equals_scipy(personas: Any) -> None:
    from sklearn.linear_model import Ridge

    model = create_model(personas.owner, name="prices", task="regression")
    grant(model, personas.bot, "contributor")
    train = training_frame(n=2000)
    train["label"] = (
        3 * train["score"] + train["age"] / 40 + np.random.default_rng(0).normal(0, 0.1, 2000)
    )
    dataset = upload_training(model, personas.owner, train)
    regressor = Ridge().fit(train[FEATURES], train["label"])
    version = ready_version(
        model,
        personas.owner,
        artifact=sio.dumps(regressor),
        training_dataset=dataset,
        target_column="label",
    )
    assert ReferenceProfile.objects.filter(version=version).count() == 0
    monitor = make_monitor(version, personas.owner, checks=["prediction_drift", "label_drift"])
    services.reference_profile_ensure(actor=services.WORKER, version=version)  # the worker's job
    window = prediction_frame(1500, seed=27, shift=0.5, prefix="r").drop(columns=["probability"])
    window["prediction"] = regressor.predict(window[FEATURES])
    ingest(version, personas.bot, window, "p")
    truth = window["prediction"] + 1.0  # everything costs one more than predicted
    labels(
        model, personas.bot, pd.DataFrame({"request_id": window["request_id"], "label": truth}), "l"
    )
    run = run_check(monitor)
    prediction = run.output_drift["prediction"]["columns"]
    assert [c["column"] for c in prediction] == ["prediction"]
    assert prediction[0]["kind"] == "numeric"
    ks = stats.ks_2samp(regressor.predict(train[FEATURES]), window["prediction"])
    assert prediction[0]["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12)
    assert prediction[0]["ks_p_value"] == pytest.approx(ks.pvalue, rel=1e-9)
    label = run.output_drift["label"]["columns"][0]
    ks = stats.ks_2samp(train["label"], truth)
    assert label["ks_p_value"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    assert label["drifted"] is True
    assert set(Alert.objects.values_list("kind", flat=True)) >= {"label_drift"}


# --- the exact-KS method for features ---------------------------------------------------


def test_the_rows_method_gives_scipys_ks_p_values_to_the_threshold(
    monitored: Any, personas: Any
) -> None:
    monitor = make_monitor(
        monitored,
        personas.owner,
        checks=["drift"],
        drift_method="rows",
        thresholds={"p_value": 0.01, "psi": 0.0},  # judge by the KS p-value alone
    )
    window = prediction_frame(4000, seed=31, shift=0.08, prefix="k")
    ingest(monitored, personas.bot, window, "k")
    run = run_check(monitor)
    assert run.drift["source"] == "rows"
    train = training_frame(n=2000)
    for column in run.drift["columns"]:
        ks = stats.ks_2samp(train[column["column"]], window[column["column"]])
        assert column["test"] == "ks"
        assert column["ks_statistic"] == pytest.approx(ks.statistic, rel=1e-12)
        assert column["ks_p_value"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
        assert column["drifted"] == (ks.pvalue < 0.01), column["column"]


def test_auto_reads_rows_up_to_the_limit_and_summaries_above(
    monitored: Any, personas: Any, settings: Any
) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["drift", "prediction_drift"])
    ingest(monitored, personas.bot, model_frame(monitored, 1000, seed=32, prefix="a"), "a")
    settings.MONITOR_ROWS_METHOD_MAX_ROWS = 1000
    run = run_check(monitor)
    assert run.drift["source"] == "rows"
    assert run.output_drift["prediction"]["source"] == "rows"
    settings.MONITOR_ROWS_METHOD_MAX_ROWS = 999
    run = run_check(monitor, END + dt.timedelta(minutes=1))
    assert run.drift["source"] == "summary"
    assert run.output_drift["prediction"]["source"] == "summary"


# --- row-count windows ------------------------------------------------------------------


def test_a_row_window_takes_the_newest_whole_batches(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["drift"], window_rows=2500)
    starts = [f"2025-12-{day:02d}T00:00:00" for day in (1, 5, 10, 20)] + ["2026-01-01T00:00:00"]
    for i, start in enumerate(starts):
        frame = prediction_frame(1000, seed=40 + i, start=start, prefix=f"b{i}-")
        ingest(monitored, personas.bot, frame, f"b{i}")
    run = run_check(monitor)
    # The three newest batches (3,000 rows >= 2,500), however old: no time limit.
    assert run.row_count == 3000
    assert run.window_start == dt.datetime(2025, 12, 10, tzinfo=dt.UTC)
    assert run.drift["columns"][0]["cur_rows"] == 3000
    again, created = services.check_run_request(
        actor=personas.owner, monitor=monitor, window_end=END
    )
    assert (again.pk, created) == (run.pk, False)
    # A newer batch pushes the oldest one out of the next window.
    ingest(
        monitored,
        personas.bot,
        prediction_frame(1000, seed=49, start="2026-01-02T00:00:00", prefix="b5-"),
        "b5",
    )
    later = run_check(monitor, END + dt.timedelta(days=1))
    assert later.row_count == 3000
    assert later.window_start == dt.datetime(2025, 12, 20, tzinfo=dt.UTC)


def test_a_row_window_with_fewer_rows_than_asked_uses_what_there_is(
    monitored: Any, personas: Any
) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["drift"], window_rows=10_000)
    ingest(monitored, personas.bot, prediction_frame(800, seed=50), "only")
    run = run_check(monitor)
    assert run.row_count == 800 and run.drift["status"] == "ok"
    empty = make_monitor(monitored, personas.owner, name="empty", window_rows=5)
    run = run_check(empty, dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert run.row_count == 0
    assert run.drift == {"status": "not_computable", "reason": "no rows in the window"}


def test_the_api_takes_row_windows_and_methods_and_returns_output_drift(
    monitored: Any, personas: Any
) -> None:
    from common.jobs import job_claim
    from monitoring.models import CheckRun
    from tests.conftest import client_for

    owner = client_for(personas.owner)
    created = owner.post(
        "/api/v1/models/credit/monitors/",
        {"name": "rows", "version": "1", "window_rows": 500, "drift_method": "summary"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["window_rows"], body["drift_method"]) == (500, "summary")
    ingest(monitored, personas.bot, model_frame(monitored, 600, seed=60, prefix="x"), "x")
    run = owner.post(f"/api/v1/models/credit/monitors/{body['id']}/run/").json()
    check_run_execute(job=job_claim(CheckRun, run["id"]))
    checks = owner.get(f"/api/v1/models/credit/monitors/{body['id']}/checks/").json()
    latest = checks["results"][0]
    assert latest["row_count"] == 600
    assert latest["drift"]["source"] == "summary"
    assert set(latest["output_drift"]) == {"prediction", "label"}
    assert latest["output_drift"]["prediction"]["status"] == "ok"


def test_a_model_that_cannot_predict_on_its_training_rows_leaves_a_reason() -> None:
    class Broken:
        classes_ = np.array([0, 1])

        def predict(self, frame: Any) -> Any:
            raise ValueError("boom")

    with pytest.raises(outputs.OutputsUnavailable, match="cannot predict.*boom"):
        outputs.reference_outputs(
            Broken(), training_frame()[FEATURES], training_frame()["label"], task="classification"
        )


def test_the_outputs_profile_round_trips_through_storage(monitored: Any, personas: Any) -> None:
    row = profiles.reference_profile_ensure(actor=personas.owner, version=monitored)
    loaded = profiles.outputs_profile_load(row)
    buffer = io.BytesIO()
    loaded.save(buffer)
    buffer.seek(0)
    assert drift.Profile.load(buffer).fingerprint == loaded.fingerprint


# --- weighted drift share ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["rows", "summary"])
def test_weights_decide_the_drift_share(monitored: Any, personas: Any, method: str) -> None:
    weights = {"age": 0.1, "income": 0.1, "score": 0.8}  # e.g. permutation importances
    monitor = make_monitor(
        monitored, personas.owner, checks=["drift"], drift_method=method, weights=weights
    )
    assert monitor.weights == weights
    window = prediction_frame(3000, seed=70, shift=1.0, prefix="w")  # age and income move
    ingest(monitored, personas.bot, window, "w")
    run = run_check(monitor)
    profile = profiles.profile_load(ReferenceProfile.objects.get(version=monitored))
    th = drift.Thresholds(p_value=0.05, psi=0.1, drift_share=0.3)
    current = window[FEATURES]
    expected = (
        drift.compare(profile, current, thresholds=th, weights=weights)
        if method == "rows"
        else drift.compare_summary(
            profile, drift.summarize(current, profile), thresholds=th, weights=weights
        )
    )
    assert expected.drifted_count == 2
    assert run.drift_share == pytest.approx(expected.drift_share) == pytest.approx(0.2)
    # Two of three features drifted, but they weigh 0.2 of 1.0: below 0.3, no alert.
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    "weights",
    [{"shoe_size": 1.0}, {"age": -1.0}, {"age": float("nan")}, {"age": 0.0}, {"age": "high"}],
)
def test_bad_weights_are_refused(monitored: Any, personas: Any, weights: Any) -> None:
    from common.errors import DomainError
    from monitoring.models import Monitor

    with pytest.raises(DomainError) as refused:
        make_monitor(monitored, personas.owner, weights=weights)
    assert refused.value.code == "invalid"
    assert not Monitor.objects.exists()
