"""Triggers: alert signals (debounce, cooldown, budget), a new training dataset, the
schedule, a person. An automatic trigger that may not run is a recorded skip."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from common.models import AuditEvent
from lifecycle import retraining
from lifecycle.models import RetrainingRun, RetrainingSkip
from monitoring import services as monitoring_services
from monitoring.models import Alert, CheckRun, Monitor, RetrainingSignal
from registry.models import Dataset
from tests.conftest import ready_version, training_frame
from tests.lifecycle.retraining_support import upload_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitor(model, personas, parent):
    return Monitor.objects.create(
        registered_model=model,
        version=parent,
        name="daily",
        checks=["drift"],
        thresholds={"drift_share": 0.3},
        request_retraining=True,
        created_by=personas.owner,
    )


_clock = {"t": timezone.now() - dt.timedelta(days=2)}


def check(monitor: Monitor, *, breached: bool) -> CheckRun:
    """One finished check of the monitor, newer than the previous one."""
    _clock["t"] += dt.timedelta(hours=1)
    start = _clock["t"]
    return CheckRun.objects.create(
        monitor=monitor,
        window_start=start - dt.timedelta(hours=1),
        window_end=start,
        status="succeeded",
        finished_at=timezone.now(),
        breaches=[{"kind": "drift", "message": "drifted"}] if breached else [],
    )


def alert_with_signal(monitor: Monitor, run: CheckRun) -> RetrainingSignal:
    alert = Alert.objects.create(
        registered_model=monitor.registered_model,
        monitor=monitor,
        kind="drift",
        message="2 of 3 features drifted",
        first_run=run,
        last_run=run,
    )
    return RetrainingSignal.objects.create(
        registered_model=monitor.registered_model,
        version=monitor.version,
        alert=alert,
        reason=alert.message,
    )


def policy(model, owner, **fields):
    fields = {"on_alert": True, "cooldown_minutes": 0, **fields}
    return retraining.retraining_policy_set(actor=owner, model=model, **fields)


def finished_run(model, owner, *, trigger="request", ago=dt.timedelta(0)):
    run = retraining.retraining_run_request(actor=owner, model=model, force=True)
    RetrainingRun.objects.filter(pk=run.pk).update(
        status="succeeded", trigger=trigger, queued_at=timezone.now() - ago
    )
    return run


# --- alerts ---------------------------------------------------------------------------------------


def test_an_alert_signal_becomes_a_run_that_names_the_alert(model, personas, parent, monitor):
    policy(model, personas.owner)
    signal = alert_with_signal(monitor, check(monitor, breached=True))
    assert retraining.retraining_signals_consume() == {"runs": 1, "skipped": 0, "waiting": 0}
    run = RetrainingRun.objects.get()
    signal.refresh_from_db()
    assert signal.consumed_at is not None and run.signal == signal
    assert run.trigger == "alert" and run.alert == signal.alert and run.parent == parent
    assert run.requested_by is None and "2 of 3 features drifted" in run.reason
    event = AuditEvent.objects.get(action="lifecycle.retraining_run.requested")
    assert event.actor == "system:lifecycle.retraining.alert"
    assert event.after["alert"] == signal.alert_id
    # A second sweep finds nothing left to consume.
    assert retraining.retraining_signals_consume()["runs"] == 0


def test_the_signal_stays_unconsumed_when_its_run_cannot_be_created(
    model, personas, parent, monitor, monkeypatch
):
    policy(model, personas.owner)
    signal = alert_with_signal(monitor, check(monitor, breached=True))

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(retraining, "_create_run", broken)
    with pytest.raises(RuntimeError):
        retraining.retraining_signals_consume()
    signal.refresh_from_db()
    assert signal.consumed_at is None and not RetrainingSkip.objects.exists()


def test_a_signal_in_the_cooldown_is_recorded_as_skipped_with_the_reason(
    model, personas, parent, monitor
):
    policy(model, personas.owner, cooldown_minutes=120)
    finished_run(model, personas.owner, ago=dt.timedelta(minutes=30))
    signal = alert_with_signal(monitor, check(monitor, breached=True))
    assert retraining.retraining_signals_consume()["skipped"] == 1
    skip = RetrainingSkip.objects.get()
    assert skip.code == "cooldown" and skip.signal == signal and skip.alert == signal.alert
    assert "cooldown of 120 minutes" in skip.reason and "90 minutes left" in skip.reason
    signal.refresh_from_db()
    assert signal.consumed_at is not None
    assert RetrainingRun.objects.count() == 1
    assert AuditEvent.objects.filter(action="lifecycle.retraining_run.skipped").count() == 1


def test_a_signal_nobody_listens_to_is_skipped_not_dropped(model, personas, parent, monitor):
    first = alert_with_signal(monitor, check(monitor, breached=True))
    retraining.retraining_signals_consume()
    policy(model, personas.owner, on_alert=False)
    Alert.objects.filter(pk=first.alert_id).update(status="resolved")
    second = alert_with_signal(monitor, check(monitor, breached=True))
    retraining.retraining_signals_consume()
    reasons = {s.signal_id: s.reason for s in RetrainingSkip.objects.all()}
    assert reasons[first.pk] == "The model has no retraining policy."
    assert reasons[second.pk] == "The retraining policy does not retrain on a monitoring alert."
    assert not RetrainingRun.objects.exists()


def test_the_debounce_waits_until_k_of_the_last_n_checks_held(model, personas, parent, monitor):
    policy(model, personas.owner, debounce_checks=2, debounce_window=3)
    signal = alert_with_signal(monitor, check(monitor, breached=True))
    assert retraining.retraining_signals_consume() == {"runs": 0, "skipped": 0, "waiting": 1}
    check(monitor, breached=False)
    assert retraining.retraining_signals_consume()["waiting"] == 1
    signal.refresh_from_db()
    assert signal.consumed_at is None and not RetrainingSkip.objects.exists()
    check(monitor, breached=True)  # 2 of the last 3
    assert retraining.retraining_signals_consume()["runs"] == 1
    assert "held in 2 of the last 3 checks" in RetrainingRun.objects.get().reason


def test_a_debounced_signal_is_skipped_once_n_checks_passed_without_k(
    model, personas, parent, monitor
):
    policy(model, personas.owner, debounce_checks=2, debounce_window=2)
    alert_with_signal(monitor, check(monitor, breached=True))
    assert retraining.retraining_signals_consume()["waiting"] == 1  # 1 of 2
    check(monitor, breached=False)
    assert retraining.retraining_signals_consume()["waiting"] == 1  # one check since the signal
    check(monitor, breached=False)
    assert retraining.retraining_signals_consume()["skipped"] == 1
    skip = RetrainingSkip.objects.get()
    assert skip.code == "debounce"
    assert skip.reason == "The condition held in 0 of the last 2 checks; 2 are needed."


def test_a_debounced_signal_is_skipped_when_its_alert_is_resolved(model, personas, parent, monitor):
    policy(model, personas.owner, debounce_checks=3, debounce_window=5)
    signal = alert_with_signal(monitor, check(monitor, breached=True))
    assert retraining.retraining_signals_consume()["waiting"] == 1
    Alert.objects.filter(pk=signal.alert_id).update(status="resolved")
    assert retraining.retraining_signals_consume()["skipped"] == 1
    assert "resolved before its condition held in 3 of 5" in RetrainingSkip.objects.get().reason


def test_the_daily_budget_stops_automatic_runs_but_not_people(model, personas, parent, monitor):
    policy(model, personas.owner, daily_budget=1)
    finished_run(model, personas.owner, trigger="schedule", ago=dt.timedelta(hours=3))
    alert_with_signal(monitor, check(monitor, breached=True))
    retraining.retraining_signals_consume()
    skip = RetrainingSkip.objects.get()
    assert skip.code == "budget" and "budget of 1 automatic runs is spent" in skip.reason
    run = retraining.retraining_run_request(actor=personas.bot, model=model)
    assert run.trigger == "request"


def test_an_automatic_trigger_while_a_run_is_active_is_skipped(model, personas, parent, monitor):
    policy(model, personas.owner)
    active = retraining.retraining_run_request(actor=personas.bot, model=model)
    alert_with_signal(monitor, check(monitor, breached=True))
    retraining.retraining_signals_consume()
    skip = RetrainingSkip.objects.get()
    assert skip.code == "run_active" and f"#{active.pk}" in skip.reason


def test_an_automatic_trigger_the_parent_cannot_do_is_skipped_with_the_reason(
    model, personas, training
):
    # The policy was set before any version existed; the parent came later.
    retraining.retraining_policy_set(
        actor=personas.owner,
        model=model,
        on_alert=True,
        strategy="online",
        production_window_hours=24,
    )
    parent = ready_version(model, personas.bot, training_dataset=training, target_column="label")
    monitor = Monitor.objects.create(
        registered_model=model, version=parent, name="m", created_by=personas.owner
    )
    alert_with_signal(monitor, check(monitor, breached=True))
    retraining.retraining_signals_consume()
    skip = RetrainingSkip.objects.get()
    assert skip.code == "unsupported_strategy" and "partial_fit" in skip.reason


def test_an_opened_alert_reaches_the_consumer_through_its_event(
    model, personas, parent, monitor, django_capture_on_commit_callbacks
):
    policy(model, personas.owner)
    run = check(monitor, breached=True)
    with django_capture_on_commit_callbacks(execute=True):
        monitoring_services.alert_raise(
            monitor=monitor, run=run, kind="drift", message="income drifted", details={}
        )
    retraining_run = RetrainingRun.objects.get()
    assert retraining_run.trigger == "alert" and retraining_run.alert.message == "income drifted"
    assert RetrainingSignal.objects.get().consumed_at is not None


# --- new data, schedule -----------------------------------------------------------------------------


def test_a_new_training_dataset_starts_a_run_on_it(
    model, personas, parent, django_capture_on_commit_callbacks
):
    policy(model, personas.owner, on_alert=False, on_new_dataset=True)
    with django_capture_on_commit_callbacks(execute=True):
        fresh = upload_dataset(model, personas.bot, training_frame(300, seed=8), "fresh")
    run = RetrainingRun.objects.get()
    assert run.trigger == "new_dataset" and run.trigger_dataset == fresh
    assert run.training_dataset == fresh and "New training dataset" in run.reason


def test_datasets_that_are_not_new_training_data_start_nothing(
    model, personas, parent, django_capture_on_commit_callbacks
):
    policy(model, personas.owner, on_alert=False, on_new_dataset=True)
    with django_capture_on_commit_callbacks(execute=True):
        upload_dataset(model, personas.bot, training_frame(50), "holdout", role="evaluation")
    stored = upload_dataset(model, personas.bot, training_frame(50), "by-a-run")
    Dataset.objects.filter(pk=stored.pk).update(created_by=None)  # as a run stores its rows
    assert retraining.retraining_on_new_dataset(dataset_id=stored.pk) is None
    assert not RetrainingRun.objects.exists() and not RetrainingSkip.objects.exists()


def test_the_schedule_starts_a_run_while_the_policy_is_enabled(model, personas, parent):
    policy(model, personas.owner, on_alert=False, schedule="0 3 * * *")
    from lifecycle.tasks import retrain_on_schedule

    retrain_on_schedule.run(model.pk)
    run = RetrainingRun.objects.get()
    assert run.trigger == "schedule" and run.reason == "Scheduled (0 3 * * *)."
    RetrainingRun.objects.filter(pk=run.pk).update(status="succeeded")
    policy(model, personas.owner, enabled=False)
    retrain_on_schedule.run(model.pk)
    assert RetrainingSkip.objects.get().reason == "The retraining policy is disabled."
    assert RetrainingRun.objects.count() == 1
