"""Scheduled checks on a real Celery worker; a check whose worker died is not lost."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from django.utils import timezone

from common.jobs import job_claim, requeue_stale_jobs
from monitoring import services
from monitoring.models import Alert, CheckRun, Monitor
from monitoring.tasks import claim_due_monitors
from tests.conftest import wait_for
from tests.monitoring.conftest import prediction_frame

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _setup(monitored: Any, personas: Any) -> Monitor:
    start = (timezone.now() - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    frame = prediction_frame(3000, shift=1.5, start=start)
    services.prediction_batch_ingest(
        actor=personas.bot,
        version=monitored,
        batch_id="live",
        table=pa.Table.from_pandas(frame, preserve_index=False),
    )
    return services.monitor_create(
        actor=personas.owner,
        model=monitored.registered_model,
        version=monitored,
        name="hourly",
        checks=["drift"],
        min_rows=100,
    )


def test_a_due_monitor_is_checked_by_the_worker_and_opens_an_alert(
    celery_worker: Any, monitored: Any, personas: Any
) -> None:
    monitor = _setup(monitored, personas)
    Monitor.objects.filter(pk=monitor.pk).update(next_run_at=timezone.now())
    assert claim_due_monitors() == 1  # what beat runs every minute
    run = wait_for(
        lambda: CheckRun.objects.filter(monitor=monitor, status="succeeded").first(),
        timeout=90,
        message="the scheduled check",
    )
    assert run.trigger == "schedule" and run.row_count == 3000
    assert run.drift_share >= 0.3
    alert = Alert.objects.get(monitor=monitor)
    assert alert.status == "open" and alert.first_run_id == run.pk
    assert "monitoring.tasks.heavy_run_check" in celery_worker.output()
    assert claim_due_monitors() == 0  # not due again until its schedule comes round


def test_a_check_whose_worker_died_is_requeued_and_finished(
    celery_worker: Any, monitored: Any, personas: Any
) -> None:
    monitor = _setup(monitored, personas)
    with pytest.MonkeyPatch.context() as mp:  # queue the row without sending its id
        mp.setattr("monitoring.services.job_enqueue", lambda job: None)
        run, _ = services.check_run_request(actor=personas.owner, monitor=monitor)
    # A worker claims it and dies before finishing: running, heartbeat going stale.
    assert job_claim(CheckRun, run.pk) is not None
    CheckRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(minutes=10)
    )
    assert requeue_stale_jobs()["requeued"] == 1
    run = wait_for(
        lambda: CheckRun.objects.filter(pk=run.pk, status="succeeded").first(),
        timeout=90,
        message="the requeued check",
    )
    assert run.attempts == 2
    assert Alert.objects.filter(monitor=monitor).count() == 1
