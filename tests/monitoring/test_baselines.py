"""Performance baselines (holdout, reference window, trailing window) and monitors that
follow an alias: a sudden drop like the demo's credit model alerts by default."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from common.errors import DomainError
from common.jobs import job_claim
from common.models import AuditEvent
from monitoring import services
from monitoring.models import Alert, CheckRun, Monitor, PredictionBatch, ProfileBuild
from registry import services as registry_services
from tests.conftest import client_for, ready_version
from tests.monitoring.conftest import prediction_frame
from tests.monitoring.test_checks import ingest, labels, run_check

pytestmark = pytest.mark.django_db
DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ROWS = 1000


def day_traffic(day: int, *, separation: float, prefix: str = "") -> tuple[Any, Any]:
    """One day of scored traffic and its labels; ``separation`` sets how well the posted
    scores rank the positives: ROC AUC = Phi(separation * sqrt(2)), so 1.05 gives about
    0.93 and 0.48 about 0.75 (the demo's credit model before and after its drop)."""
    start = (DAY0 + dt.timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S")
    frame = prediction_frame(ROWS, seed=day, start=start, prefix=f"{prefix}d{day}-")
    rng = np.random.default_rng(1000 + day)
    truth = (rng.random(ROWS) < 0.3).astype("int64")
    logit = separation * (2 * truth - 1) - 0.9 + rng.normal(0, 1, ROWS)
    frame["probability"] = 1 / (1 + np.exp(-logit))
    frame["prediction"] = (frame["probability"] > 0.5).astype("int64")
    return frame, pd.DataFrame({"request_id": frame["request_id"], "label": truth})


def post_day(version: Any, personas: Any, day: int, *, separation: float, prefix: str = "") -> Any:
    frame, truth = day_traffic(day, separation=separation, prefix=prefix)
    ingest(version, personas.bot, frame, f"{prefix}p{day}")
    labels(version.registered_model, personas.bot, truth, f"{prefix}l{day}")
    return frame.assign(label=truth["label"].to_numpy())


def end_of(day: int) -> dt.datetime:
    return DAY0 + dt.timedelta(days=day + 1)


def test_a_sudden_drop_alerts_by_default_but_not_against_the_holdout(
    model: Any, personas: Any
) -> None:
    # Registered holdout metrics below what live traffic ever shows (the demo's credit
    # model: holdout ROC AUC 0.73 while live AUC falls from 0.93 to 0.75).
    version = ready_version(
        model, personas.owner, metrics={"roc_auc": 0.73, "f1": 0.35, "accuracy": 0.7}
    )
    common = {"model": model, "version": version, "checks": ["performance"], "min_rows": 50}
    default = services.monitor_create(actor=personas.owner, name="default", **common)
    holdout = services.monitor_create(
        actor=personas.owner, name="holdout", baseline="holdout", **common
    )
    trailing = services.monitor_create(
        actor=personas.owner, name="trailing", baseline="trailing", baseline_days=3, **common
    )
    assert (default.baseline, default.baseline_days) == ("reference", 7)
    days = [post_day(version, personas, d, separation=1.05) for d in range(8)]
    days.append(post_day(version, personas, 8, separation=0.48))

    runs = {m.name: [run_check(m, end_of(d)) for d in range(9)] for m in (default, holdout)}
    trailing_last = run_check(trailing, end_of(8))

    # The first seven days are the reference window: nothing to compare with yet.
    for run in runs["default"][:7]:
        assert run.metrics["baseline_source"]["status"] == "pending"
        assert run.metrics["drops"] == {} and not run.breaches
    # Its metrics are scikit-learn's on the labelled rows of days 0-6.
    reference = pd.concat(days[:7])
    source = runs["default"][7].metrics
    assert source["baseline_source"]["labelled"] == len(reference)
    assert source["baseline"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(reference["label"], reference["probability"])
    )
    assert source["baseline"]["f1"] == pytest.approx(
        skm.f1_score(reference["label"], reference["prediction"])
    )
    assert not runs["default"][7].breaches  # day 7 is like the reference
    dropped = runs["default"][8].metrics
    today = days[8]
    assert dropped["values"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(today["label"], today["probability"])
    )
    assert dropped["baseline"]["roc_auc"] > 0.9 and dropped["values"]["roc_auc"] < 0.8
    assert dropped["drops"]["roc_auc"] == pytest.approx(
        dropped["baseline"]["roc_auc"] - dropped["values"]["roc_auc"]
    )
    # The complete reference window is kept, not joined again at every check.
    cached = Monitor.objects.get(pk=default.pk).baseline_cache
    assert cached["version"] == version.pk and cached["result"]["values"] == source["baseline"]
    assert cached["days"] == 7
    # ... and the retention sweep deleting the oldest batch does not move it.
    PredictionBatch.objects.filter(version=version, batch_id="p0").delete()
    again = run_check(default, end_of(8) - dt.timedelta(minutes=1))
    assert again.metrics["baseline_source"]["start"] == DAY0.isoformat()
    assert again.metrics["baseline"] == source["baseline"]

    alert = Alert.objects.get(monitor=default)
    assert alert.kind == "performance" and alert.first_run_id == runs["default"][8].pk
    assert "v1" in alert.message and "first 7 d of v1 in production" in alert.message
    assert "roc_auc" in alert.details["drops"]
    # Against the holdout the same drop is invisible: live AUC never falls below 0.73.
    assert not Alert.objects.filter(monitor=holdout).exists()
    assert runs["holdout"][8].metrics["baseline"]["roc_auc"] == 0.73
    # The trailing window (days 5-7) sees it too.
    assert trailing_last.metrics["baseline_source"]["start"] == (end_of(4)).isoformat()
    assert Alert.objects.filter(monitor=trailing, kind="performance").exists()


def test_a_trailing_window_with_too_few_labels_is_not_computable(model: Any, personas: Any) -> None:
    version = ready_version(model, personas.owner, metrics={"accuracy": 0.99})
    monitor = services.monitor_create(
        actor=personas.owner,
        model=model,
        version=version,
        name="t",
        checks=["performance"],
        baseline="trailing",
        min_rows=50,
    )
    post_day(version, personas, 0, separation=0.1)
    run = run_check(monitor, end_of(0))
    assert run.metrics["status"] == "ok" and run.metrics["drops"] == {}
    assert run.metrics["baseline_source"]["status"] == "not_computable"
    assert "0 labelled rows in the baseline window" in run.metrics["baseline_source"]["reason"]
    assert not run.breaches


def test_a_monitor_follows_its_alias_across_a_deployment(
    monitored: Any, personas: Any, without_alias_gates: Any
) -> None:
    model = monitored.registered_model
    v2 = ready_version(
        model,
        personas.owner,
        training_dataset=monitored.training_dataset,
        target_column="label",
        metrics={"accuracy": 0.9},
    )
    registry_services.alias_set(
        actor=personas.owner, model=model, name="production", version_number=1
    )
    monitor = services.monitor_create(
        actor=personas.owner,
        model=model,
        alias="production",
        name="prod",
        checks=["drift", "performance"],
        min_rows=50,
    )
    assert monitor.version == monitored and monitor.alias == "production"
    post_day(monitored, personas, 0, separation=1.05, prefix="a")
    first = run_check(monitor, end_of(0))
    assert first.version == monitored and first.row_count == ROWS
    assert first.metrics["version"] == 1

    # A deployment moves production to v2; v2 serves the next day.
    registry_services.alias_set(
        actor=personas.owner, model=model, name="production", version_number=v2.number
    )
    post_day(v2, personas, 1, separation=1.05, prefix="b")
    with pytest.raises(DomainError) as mismatch:
        services.monitor_create(
            actor=personas.owner, model=model, alias="production", version=monitored, name="x"
        )
    assert "points at v2, not v1" in mismatch.value.message
    monitor.refresh_from_db()
    second = run_check(monitor, end_of(1))
    assert second.version == v2 and second.metrics["version"] == 2
    assert second.row_count == ROWS  # v2's rows only
    assert Monitor.objects.get(pk=monitor.pk).version == v2
    moved = AuditEvent.objects.get(action="monitoring.monitor.follow")
    assert moved.before == {"version": 1} and moved.after == {"version": 2, "alias": "production"}
    # v2 has no drift baseline yet: a worker is asked for one; the check says why.
    assert ProfileBuild.objects.filter(version=v2).exists()
    assert second.drift["status"] == "not_computable"
    build = job_claim(ProfileBuild, ProfileBuild.objects.get(version=v2).pk)
    services.reference_profile_build(job=build)  # the worker's half: baseline + summaries
    third = run_check(monitor, end_of(1) - dt.timedelta(minutes=1))
    assert third.drift["status"] == "ok" and third.version == v2, third.drift
    assert AuditEvent.objects.filter(action="monitoring.monitor.follow").count() == 1

    # The API says which version each check judged and what the monitor follows.
    client = client_for(personas.viewer)
    listed = client.get(f"/api/v1/models/credit/monitors/{monitor.pk}/").json()
    assert (listed["alias"], listed["version"]) == ("production", 2)
    checks = client.get(f"/api/v1/models/credit/monitors/{monitor.pk}/checks/").json()
    judged = {c["id"]: c["version"] for c in checks["results"]}
    assert judged == {first.pk: 1, second.pk: 2, third.pk: 2}


def test_monitor_baseline_and_alias_round_trip_through_the_api(
    monitored: Any, personas: Any, without_alias_gates: Any
) -> None:
    model = monitored.registered_model
    registry_services.alias_set(
        actor=personas.owner, model=model, name="production", version_number=1
    )
    owner = client_for(personas.owner)
    url = "/api/v1/models/credit/monitors/"
    made = owner.post(
        url,
        {
            "name": "prod",
            "alias": "production",
            "baseline": "trailing",
            "baseline_days": 3,
            "metric_tolerance": "relative",
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (
        body["alias"],
        body["version"],
        body["baseline"],
        body["baseline_days"],
        body["metric_tolerance"],
    ) == ("production", 1, "trailing", 3, "relative")
    assert owner.get(f"{url}{body['id']}/").json() == body
    plain = owner.post(url, {"name": "plain", "version": "1"}, format="json").json()
    assert (plain["alias"], plain["baseline"], plain["baseline_days"]) == ("", "reference", 7)
    assert plain["metric_tolerance"] == "absolute"

    before = Monitor.objects.count()
    for payload, field in (
        ({"name": "x", "alias": "nowhere"}, "alias"),
        ({"name": "x"}, "version"),
        ({"name": "x", "version": "1", "baseline": "yesterday"}, "baseline"),
        ({"name": "x", "version": "1", "baseline_days": 0}, "baseline_days"),
        ({"name": "x", "version": "1", "metric_tolerance": "lax"}, "metric_tolerance"),
    ):
        refused = owner.post(url, payload, format="json")
        assert refused.status_code == 400, (payload, refused.content)
        error = refused.json()["error"]
        assert error["code"] in {"invalid", "validation_error"}, error
        assert field in str(error), error
    assert Monitor.objects.count() == before
    assert (
        client_for(personas.viewer)
        .post(url, {"name": "v", "alias": "production"}, format="json")
        .status_code
        == 403
    )
    assert CheckRun.objects.count() == 0


def test_a_relative_tolerance_reads_the_drop_as_a_share_of_the_baseline() -> None:
    from common import metrics as mx
    from monitoring import performance

    # F1 0.62 -> 0.38: 0.24 absolute, 38.7% of the baseline.
    assert performance.metric_drop("f1", 0.62, 0.38) == pytest.approx(0.24)
    assert performance.metric_drop("f1", 0.62, 0.38, relative=True) == pytest.approx(0.24 / 0.62)
    # Lower-is-better metrics keep their direction; RMSE is relative either way.
    assert performance.metric_drop("log_loss", 0.4, 0.5, relative=True) == pytest.approx(0.25)
    assert performance.metric_drop("rmse", 2.0, 2.5, relative=True) == pytest.approx(
        performance.metric_drop("rmse", 2.0, 2.5)
    )
    assert performance.metric_drop("rmse", 2.0, 2.5) == pytest.approx(
        -mx.improvement("rmse", 2.0, 2.5)
    )
    assert performance.metric_drop("r2", 0.0, -0.1, relative=True) == float("inf")
    assert performance.metric_drop("accuracy", 0.8, 0.9, relative=True) < 0


def test_a_relative_tolerance_alerts_where_the_absolute_one_does_not(
    model: Any, personas: Any
) -> None:
    version = ready_version(model, personas.owner, metrics={"log_loss": 0.2})
    common = {
        "model": model,
        "version": version,
        "checks": ["performance"],
        "min_rows": 50,
        "baseline": "holdout",
        "thresholds": {"metric_drop": 0.3},
    }
    absolute = services.monitor_create(actor=personas.owner, name="abs", **common)
    relative = services.monitor_create(
        actor=personas.owner, name="rel", metric_tolerance="relative", **common
    )
    post_day(version, personas, 0, separation=1.05)
    runs = {m.name: run_check(m, end_of(0)) for m in (absolute, relative)}
    loss = runs["abs"].metrics["values"]["log_loss"]
    assert 0.2 * 1.3 < loss < 0.5  # worse by more than 30 % of 0.2, by less than 0.3
    assert runs["abs"].metrics["drops"]["log_loss"] == pytest.approx(loss - 0.2)
    assert runs["rel"].metrics["drops"]["log_loss"] == pytest.approx((loss - 0.2) / 0.2)
    assert not Alert.objects.filter(monitor=absolute).exists()
    assert Alert.objects.get(monitor=relative).kind == "performance"
