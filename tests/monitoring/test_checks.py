"""Checks: drift against monitoring.drift, metrics against scikit-learn, alerts, A/B."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn import metrics as skm

from common.errors import DomainError
from common.events import register_event_listener
from common.jobs import job_claim, job_fail
from common.models import AuditEvent
from monitoring import checks, drift, performance, profiles, services
from monitoring.models import Alert, CheckRun, Monitor, ReferenceProfile, RetrainingSignal
from tests.conftest import client_for, ready_version, training_frame
from tests.monitoring.conftest import prediction_frame

pytestmark = pytest.mark.django_db
END = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def ingest(version: Any, actor: Any, frame: pd.DataFrame, batch_id: str) -> Any:
    return services.prediction_batch_ingest(
        actor=actor,
        version=version,
        batch_id=batch_id,
        table=pa.Table.from_pandas(frame, preserve_index=False),
    )[0]


def labels(model: Any, actor: Any, frame: pd.DataFrame, batch_id: str) -> Any:
    return services.label_batch_ingest(
        actor=actor,
        model=model,
        batch_id=batch_id,
        table=pa.Table.from_pandas(frame, preserve_index=False),
    )[0]


def run_check(monitor: Monitor, end: dt.datetime = END) -> CheckRun:
    run, _ = services.check_run_request(actor=monitor.created_by, monitor=monitor, window_end=end)
    job = job_claim(CheckRun, run.pk)
    assert job is not None
    return checks.check_run_execute(job=job)


def make_monitor(version: Any, actor: Any, **kwargs: Any) -> Monitor:
    kwargs.setdefault("name", "main")
    kwargs.setdefault("min_rows", 50)
    return services.monitor_create(
        actor=actor, model=version.registered_model, version=version, **kwargs
    )


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    register_event_listener(lambda name, payload: seen.append((name, payload)))
    return seen


def test_the_drift_check_equals_the_drift_engine_on_the_window(
    monitored: Any, personas: Any
) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["drift"], drift_method="summary")
    a = prediction_frame(3000, seed=1, shift=1.0, prefix="a")
    b = prediction_frame(2000, seed=2, shift=1.0, prefix="b", start="2026-01-01T10:00:00")
    ingest(monitored, personas.bot, a, "a")
    ingest(monitored, personas.bot, b, "b")
    # A batch outside the window does not count.
    ingest(monitored, personas.bot, prediction_frame(500, start="2025-12-01T00:00:00"), "old")
    run = run_check(monitor)
    assert run.status == "succeeded"
    assert run.row_count == 5000
    profile = profiles.profile_load(ReferenceProfile.objects.get(version=monitored))
    window = pd.concat([a, b])[["age", "income", "score"]]
    expected = drift.compare_summary(
        profile,
        drift.summarize(window, profile),
        thresholds=drift.Thresholds(p_value=0.05, psi=0.1, drift_share=0.3),
    )
    assert run.drift["source"] == "summary"
    assert run.drift_share == pytest.approx(expected.drift_share)
    for column in expected.columns:
        stored = next(c for c in run.drift["columns"] if c["column"] == column.column)
        assert stored["psi"] == pytest.approx(column.psi)
        assert stored["drifted"] == column.drifted
    # The shift moved age by one standard deviation: drifted, and an alert opened.
    assert "age" in [c["column"] for c in run.drift["columns"] if c["drifted"]]
    alert = Alert.objects.get(monitor=monitor)
    assert alert.kind == "drift" and alert.status == "open"
    assert "age" in alert.message


def test_no_shift_no_alert(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["drift"])
    reference = training_frame(n=3000, seed=7)
    frame = reference[["age", "income", "score"]].copy()
    frame["request_id"] = [f"x{i}" for i in range(len(frame))]
    frame["timestamp"] = pd.Timestamp("2026-01-01T05:00:00", tz="UTC")
    frame["prediction"] = 0
    ingest(monitored, personas.bot, frame, "same-population")
    run = run_check(monitor)
    assert run.drift["status"] == "ok"
    assert run.drift_share < 0.3
    assert not Alert.objects.exists()


def test_too_few_rows_is_not_computable_and_opens_nothing(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, min_rows=1000)
    ingest(monitored, personas.bot, prediction_frame(100, shift=3.0), "small")
    run = run_check(monitor)
    assert run.drift["status"] == "not_computable"
    assert "fewer than the minimum 1000" in run.drift["reason"]
    assert run.metrics["status"] == "not_computable"
    assert not Alert.objects.exists()


def test_performance_metrics_equal_scikit_learn_after_the_label_join(
    monitored: Any, personas: Any
) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["performance"], baseline="holdout")
    frame = prediction_frame(800, seed=4)
    ingest(monitored, personas.bot, frame, "p")
    rng = np.random.default_rng(5)
    truth = np.where(rng.random(800) < 0.7, frame["prediction"], 1 - frame["prediction"])
    # Labels for 600 of the rows, shuffled, in two batches, plus ids never predicted.
    order = rng.permutation(800)[:600]
    lab = pd.DataFrame({"request_id": frame["request_id"].to_numpy()[order], "label": truth[order]})
    labels(monitored.registered_model, personas.bot, lab.iloc[:300], "l1")
    extra = pd.DataFrame({"request_id": ["nope1", "nope2"], "label": [1, 0]})
    labels(
        monitored.registered_model,
        personas.bot,
        pd.concat([lab.iloc[300:], extra]),
        "l2",
    )
    # A correction relabels 100 rows (posted first as the opposite class): the last label wins.
    fixed = lab.iloc[:100].copy()
    labels(
        monitored.registered_model,
        personas.bot,
        fixed.assign(label=1 - fixed["label"]),
        "l0-wrong",
    )
    from monitoring.models import LabelBatch

    LabelBatch.objects.filter(batch_id="l0-wrong").update(
        created_at=LabelBatch.objects.get(batch_id="l1").created_at - dt.timedelta(seconds=1)
    )
    run = run_check(monitor)
    assert run.labelled_count == 600
    y_true, y_pred = truth[order], frame["prediction"].to_numpy()[order]
    proba = frame["probability"].to_numpy()[order]
    values = run.metrics["values"]
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert values["precision"] == pytest.approx(skm.precision_score(y_true, y_pred))
    assert values["recall"] == pytest.approx(skm.recall_score(y_true, y_pred))
    assert values["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))
    assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, proba))
    # Baseline accuracy 0.9 vs ~0.7 now: a performance alert.
    assert run.metrics["drops"]["accuracy"] == pytest.approx(0.9 - values["accuracy"])
    alert = Alert.objects.get(monitor=monitor)
    assert alert.kind == "performance"


def test_regression_metrics_equal_scikit_learn(personas: Any) -> None:
    from tests.conftest import create_model, grant, regressor_bytes
    from tests.monitoring.conftest import upload_training

    model = create_model(personas.owner, name="diabetes", task="regression")
    grant(model, personas.bot, "contributor")
    dataset = upload_training(model, personas.owner)
    version = ready_version(
        model,
        personas.owner,
        artifact=regressor_bytes(),
        training_dataset=dataset,
        target_column="label",
        metrics={"rmse": 0.1},
    )
    monitor = make_monitor(version, personas.owner, checks=["performance"], baseline="holdout")
    frame = prediction_frame(300, seed=8).drop(columns=["probability"])
    frame["prediction"] = np.random.default_rng(1).random(300)
    ingest(version, personas.bot, frame, "p")
    truth = frame["prediction"] + np.random.default_rng(2).normal(0, 0.3, 300)
    labels(
        model, personas.bot, pd.DataFrame({"request_id": frame["request_id"], "label": truth}), "l"
    )
    run = run_check(monitor)
    values = run.metrics["values"]
    assert values["rmse"] == pytest.approx(
        math.sqrt(skm.mean_squared_error(truth, frame["prediction"]))
    )
    assert values["mae"] == pytest.approx(skm.mean_absolute_error(truth, frame["prediction"]))
    assert values["r2"] == pytest.approx(skm.r2_score(truth, frame["prediction"]))
    # RMSE ~0.3 vs baseline 0.1: a relative increase far above 5%.
    assert Alert.objects.get(monitor=monitor).kind == "performance"


def test_alerts_are_deduplicated_then_acknowledged_and_resolved(
    monitored: Any, personas: Any, events: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        monitor = make_monitor(monitored, personas.owner, checks=["drift"], request_retraining=True)
        ingest(
            monitored,
            personas.bot,
            prediction_frame(2000, shift=1.5, start="2026-01-01T12:00:00"),
            "d",
        )
        run_check(monitor)
        run_check(monitor, END + dt.timedelta(hours=1))
        alert = Alert.objects.get(monitor=monitor)
        assert alert.occurrences == 2
        assert RetrainingSignal.objects.filter(alert=alert).count() == 1
        with pytest.raises(DomainError) as denied:
            services.alert_acknowledge(actor=personas.viewer, alert=alert)
        assert denied.value.status == 403
        alert = services.alert_acknowledge(actor=personas.owner, alert=alert)
        assert alert.status == "acknowledged" and alert.acknowledged_by == personas.owner
        run_check(monitor, END + dt.timedelta(hours=2))  # still active: no new alert
        assert Alert.objects.filter(monitor=monitor).count() == 1
        alert = services.alert_resolve(actor=personas.owner, alert=alert, comment="retrained")
        assert alert.status == "resolved"
        with pytest.raises(DomainError) as again:
            services.alert_resolve(actor=personas.owner, alert=alert)
        assert again.value.status == 409
        run_check(monitor, END + dt.timedelta(hours=3))  # drift persists: a fresh alert
        assert Alert.objects.filter(monitor=monitor, status="open").count() == 1
        actions = set(AuditEvent.objects.values_list("action", flat=True))
        assert {
            "monitoring.alert.open",
            "monitoring.alert.acknowledge",
            "monitoring.alert.resolve",
            "monitoring.check.finish",
            "monitoring.check.request",
            "monitoring.monitor.create",
        } <= actions
    # The monitor requests retraining: each opened alert also announces its signal.
    assert [e[0] for e in events] == [
        "monitoring.retraining.requested",
        "monitoring.alert.opened",
        "monitoring.alert.acknowledged",
        "monitoring.alert.resolved",
        "monitoring.retraining.requested",
        "monitoring.alert.opened",
    ]


def test_one_run_per_monitor_and_window(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner)
    first, created = services.check_run_request(
        actor=personas.owner, monitor=monitor, window_end=END
    )
    again, created_again = services.check_run_request(
        actor=personas.owner, monitor=monitor, window_end=END
    )
    assert created and not created_again and first.pk == again.pk


def test_beat_claims_each_due_monitor_once(monitored: Any, personas: Any) -> None:
    monitor = make_monitor(monitored, personas.owner, schedule_minutes=30)
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=END)
    assert services.monitors_claim_due(now=END + dt.timedelta(minutes=1)) == 1
    assert services.monitors_claim_due(now=END + dt.timedelta(minutes=2)) == 0
    run = CheckRun.objects.get(monitor=monitor)
    assert run.window_end == END and run.trigger == "schedule"
    assert run.window_start == END - dt.timedelta(hours=24)
    monitor.refresh_from_db()
    assert monitor.next_run_at == END + dt.timedelta(minutes=30)


def test_ab_accuracy_uses_the_two_proportion_z_test() -> None:
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"label": rng.integers(0, 2, 2000)})
    a["prediction"] = np.where(rng.random(2000) < 0.80, a["label"], 1 - a["label"])
    b = pd.DataFrame({"label": rng.integers(0, 2, 1500)})
    b["prediction"] = np.where(rng.random(1500) < 0.85, b["label"], 1 - b["label"])
    result = performance.ab_compare("accuracy", a, b)
    hits_a = int((a["label"] == a["prediction"]).sum())
    hits_b = int((b["label"] == b["prediction"]).sum())
    table = [[hits_a, 2000 - hits_a], [hits_b, 1500 - hits_b]]
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert result["test"] == "two_proportion_z"
    assert result["p_value"] == pytest.approx(p)
    assert result["z"] ** 2 == pytest.approx(chi2)
    assert result["difference"] == pytest.approx(hits_b / 1500 - hits_a / 2000)
    assert result["ci_low"] < result["difference"] < result["ci_high"]
    assert result["winner"] == "b" and result["significant"]


def test_ab_bootstrap_and_too_little_data() -> None:
    rng = np.random.default_rng(1)
    a = pd.DataFrame({"label": rng.normal(size=400)})
    a["prediction"] = a["label"] + rng.normal(0, 0.5, 400)
    b = a.copy()
    b["prediction"] = b["label"] + rng.normal(0, 0.5, 400)
    result = performance.ab_compare("mae", a, b)
    assert result["test"] == "bootstrap"
    assert result["ci_low"] <= result["difference"] <= result["ci_high"]
    assert result["winner"] is None
    assert "No significant difference" in result["verdict"]
    small = performance.ab_compare("accuracy", a.iloc[:20].round(), b.iloc[:30].round())
    assert small["winner"] is None and "Not enough labelled data" in small["verdict"]


def test_ab_endpoint_compares_two_versions(monitored: Any, personas: Any) -> None:
    from tests.conftest import classifier_bytes, ready_version

    challenger = ready_version(
        monitored.registered_model, personas.owner, artifact=classifier_bytes(1)
    )
    rng = np.random.default_rng(3)
    for version, rate, tag in ((monitored, 0.6, "a"), (challenger, 0.9, "b")):
        frame = prediction_frame(600, seed=int(rate * 10), prefix=tag)
        ingest(version, personas.bot, frame, f"p{tag}")
        truth = np.where(rng.random(600) < rate, frame["prediction"], 1 - frame["prediction"])
        labels(
            version.registered_model,
            personas.bot,
            pd.DataFrame({"request_id": frame["request_id"], "label": truth}),
            f"l{tag}",
        )
    # A monitor on the challenger reports the champion's metrics on the same window.
    from registry import services as registry_services

    registry_services.alias_set(
        actor=personas.owner, model=monitored.registered_model, name="champion", version_number=1
    )
    monitor = make_monitor(challenger, personas.owner, checks=["performance"], name="challenger")
    metrics = run_check(monitor).metrics
    assert metrics["champion"]["version"] == monitored.number
    assert metrics["champion"]["labelled"] == 600
    assert metrics["values"]["accuracy"] > metrics["champion"]["values"]["accuracy"]
    response = client_for(personas.viewer).get(
        f"/api/v1/models/credit/ab/?a={monitored.number}&b={challenger.number}&metric=accuracy"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["winner"] == "b" and body["n_a"] == 600 and body["n_b"] == 600
    bad = client_for(personas.viewer).get("/api/v1/models/credit/ab/?a=1&b=2&metric=rmse")
    assert bad.status_code == 400
    assert client_for(personas.outsider).get("/api/v1/models/credit/ab/?a=1&b=2").status_code == 404


@settings(max_examples=60, deadline=None)
@given(
    n_a=st.integers(1, 5000),
    n_b=st.integers(1, 5000),
    rate_a=st.floats(0, 1),
    rate_b=st.floats(0, 1),
)
def test_the_z_test_matches_scipy_on_any_counts(
    n_a: int, n_b: int, rate_a: float, rate_b: float
) -> None:
    hits_a, hits_b = round(n_a * rate_a), round(n_b * rate_b)
    result = performance.two_proportion_ztest(hits_a, n_a, hits_b, n_b)
    assert 0.0 <= result["p_value"] <= 1.0
    assert result["difference"] == pytest.approx(hits_b / n_b - hits_a / n_a)
    if 0 < hits_a + hits_b < n_a + n_b:  # both outcomes seen: the test is defined
        table = [[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]]
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        assert result["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12)
        assert result["z"] ** 2 == pytest.approx(chi2, rel=1e-6, abs=1e-9)
    else:
        assert result["p_value"] == 1.0


def test_an_opened_alert_is_mailed_to_the_owner_and_team_with_an_absolute_link(
    monitored: Any, personas: Any, mailoutbox: Any, settings: Any
) -> None:
    from monitoring.tasks import email_alert

    settings.SITE_URL = "https://modelgate.example"

    monitor = make_monitor(monitored, personas.owner, checks=["drift"])
    ingest(monitored, personas.bot, prediction_frame(2000, shift=1.5), "d")
    run_check(monitor)
    alert = Alert.objects.get()
    assert email_alert(alert.pk) == 1  # the owner; the team's only member is the owner
    assert mailoutbox[0].to == ["owner@example.com"]
    assert "credit" in mailoutbox[0].subject and "age" in mailoutbox[0].body
    assert "https://modelgate.example/monitoring/models/credit/\n" in mailoutbox[0].body
    services.alert_resolve(actor=personas.owner, alert=alert)
    assert email_alert(alert.pk) == 0  # resolved meanwhile: nothing to say


def test_labels_posted_before_the_windows_predictions_are_not_read(
    monitored: Any, personas: Any
) -> None:
    from monitoring.models import LabelBatch
    from monitoring.windows import labelled_rows

    frame = prediction_frame(300, seed=11)  # timestamps from 2026-01-01 00:00 UTC
    batch = ingest(monitored, personas.bot, frame, "p")
    ids = frame["request_id"]
    labels(
        monitored.registered_model,
        personas.bot,
        pd.DataFrame({"request_id": ids[:100], "label": 1}),
        "stale",
    )
    labels(
        monitored.registered_model,
        personas.bot,
        pd.DataFrame({"request_id": ids[100:200], "label": 1}),
        "skewed",
    )
    labels(
        monitored.registered_model,
        personas.bot,
        pd.DataFrame({"request_id": ids[200:], "label": 1}),
        "later",
    )
    # Posted a month before the requests it labels: outside any window of these rows.
    LabelBatch.objects.filter(batch_id="stale").update(
        created_at=dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    )
    # Posted twelve hours "before" them: within the allowed clock skew.
    LabelBatch.objects.filter(batch_id="skewed").update(
        created_at=dt.datetime(2025, 12, 31, 12, tzinfo=dt.UTC)
    )
    joined = labelled_rows(monitored.registered_model, monitored, [batch])
    assert sorted(joined["request_id"]) == sorted(ids[100:])
    assert labelled_rows(monitored.registered_model, monitored, []).empty


def test_a_check_that_fails_for_good_is_recorded_in_the_trail_by_its_failure_handler(
    monitored: Any, personas: Any
) -> None:
    monitor = make_monitor(monitored, personas.owner, checks=["drift"])
    run, _ = services.check_run_request(actor=personas.owner, monitor=monitor, window_end=END)
    job = job_claim(CheckRun, run.pk)
    assert job is not None
    assert job_fail(job, error="the window could not be read", retry=False) == "failed"
    event = AuditEvent.objects.get(action="monitoring.check.fail")
    assert event.object_id == str(run.pk) and event.actor == "system:monitoring.worker"
    assert event.after == {"error": "the window could not be read"}
