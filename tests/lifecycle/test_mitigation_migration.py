"""Migration lifecycle 0005: governance's MitigationRun rows become retraining runs
(strategy fairness_mitigation) before governance 0009 drops the table.

The database is migrated back to just before both, mitigation rows are written with
the historical model, and it is migrated forward again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from governance.models import FairnessAudit, Review
from lifecycle import retraining
from lifecycle.models import Evaluation, RetrainingRun
from registry.models import ModelVersion
from tests.conftest import ready_version
from tests.evidence_support import audit_frame, upload
from tests.lifecycle.retraining_support import upload_dataset

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("lifecycle", "0004_retraining"),
    ("governance", "0008_fairness_audit_requested_by_optional"),
]
AFTER = [
    ("lifecycle", "0005_mitigation_runs_into_retraining_runs"),
    ("governance", "0009_mitigation_runs_are_retraining_runs"),
]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def migrate_to_latest():
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture(autouse=True)
def latest_schema_after():
    """Whatever happens, the tests after this one find every migration applied."""
    yield
    migrate_to_latest()


def test_mitigation_runs_are_carried_over_into_retraining_history(model, personas):
    train = upload_dataset(model, personas.bot, audit_frame(seed=3), name="train-data")
    v1 = ready_version(model, personas.bot, training_dataset=train, target_column="label")
    held_out = upload(model, personas.bot, audit_frame(seed=8))
    audit = FairnessAudit.objects.create(
        version=v1,
        dataset=held_out,
        dataset_sha256=held_out.sha256,
        target_column="label",
        sensitive_columns=["sex"],
        bootstrap=50,
        status="succeeded",
        passed=False,
        requested_by=personas.bot,
    )
    done = ready_version(model, personas.bot)  # v2: a finished mitigation's candidate
    follow_up = FairnessAudit.objects.create(
        version=done,
        dataset=held_out,
        dataset_sha256=held_out.sha256,
        target_column="label",
        sensitive_columns=["sex"],
        status="succeeded",
        passed=True,
    )
    evaluation = Evaluation.objects.create(
        version=done,
        dataset=held_out,
        dataset_sha256=held_out.sha256,
        target_column="label",
        status="succeeded",
    )
    lost = ready_version(model, personas.bot)  # v3: ready, its follow-up never ran
    queued_at = timezone.now() - dt.timedelta(days=2)

    apps = migrate(BEFORE)
    historical = apps.get_model("governance", "MitigationRun")
    common = dict(
        audit_id=audit.pk, version_id=v1.pk, requested_by_id=personas.owner.pk, constraint=""
    )
    finished = historical.objects.create(
        **{**common, "constraint": "demographic_parity"},
        method="threshold_optimizer",
        random_state=5,
        candidate_id=done.pk,
        follow_up_id=follow_up.pk,
        status="succeeded",
        attempts=1,
        queued_at=queued_at,
        started_at=queued_at + dt.timedelta(seconds=1),
        finished_at=queued_at + dt.timedelta(seconds=9),
        log="registered candidate v2",
    )
    unfollowed = historical.objects.create(
        **{**common, "constraint": "equalized_odds"},
        method="threshold_optimizer",
        candidate_id=lost.pk,
        status="succeeded",
        queued_at=queued_at + dt.timedelta(hours=1),
        finished_at=queued_at + dt.timedelta(hours=1, seconds=5),
    )
    failed = historical.objects.create(
        **{**common, "constraint": "demographic_parity"},
        method="exponentiated_gradient",
        status="failed",
        error="fairlearn cannot mitigate on this data",
        queued_at=queued_at + dt.timedelta(hours=2),
    )
    interrupted = historical.objects.create(
        **{**common, "constraint": "demographic_parity"},
        method="threshold_optimizer",
        status="running",
        attempts=1,
        queued_at=queued_at + dt.timedelta(hours=3),
    )
    beat = apps.get_model("django_celery_beat", "PeriodicTask")
    schedule = apps.get_model("django_celery_beat", "CrontabSchedule").objects.create(minute="*/5")
    beat.objects.create(
        name="mitigation-follow-ups",
        task="governance.tasks.mitigation_follow_up_sweep",
        crontab=schedule,
    )

    migrate(AFTER)
    migrate_to_latest()  # the models below are today's; later migrations keep the rows
    from django_celery_beat.models import PeriodicTask

    assert not PeriodicTask.objects.filter(task__startswith="governance.tasks.mitigation").exists()
    runs = {
        int(run.reason.split("#")[1].split()[0]): run
        for run in RetrainingRun.objects.order_by("queued_at")
    }
    assert set(runs) == {finished.pk, unfollowed.pk, failed.pk, interrupted.pk}
    for run in runs.values():
        assert (run.registered_model, run.parent, run.fairness_audit) == (model, v1, audit)
        assert (run.strategy, run.trigger, run.requested_by) == (
            "fairness_mitigation",
            "request",
            personas.owner,
        )
        assert (run.training_dataset, run.evaluation_dataset) == (train, held_out)
        assert run.sensitive_columns == ["sex"] and run.target_column == "label"
        assert run.features == [*v1.feature_names, "sex"]
        assert run.auto_submit is False and run.production_window_hours == 0

    run = runs[finished.pk]
    assert run.params == {
        "method": "threshold_optimizer",
        "constraint": "demographic_parity",
        "sensitive_columns": ["sex"],
    }
    assert (run.seed, run.status, run.attempts) == (5, "succeeded", 1)
    assert (run.queued_at, run.finished_at) == (finished.queued_at, finished.finished_at)
    assert run.version == done and run.outcome == "candidate_ready"
    assert (run.follow_up_audit, run.evaluation) == (follow_up, evaluation)
    assert run.followed_up_at == finished.finished_at
    assert f"mitigation #{finished.pk}" in run.log and "registered candidate v2" in run.log
    assert run.duration_seconds == 8

    # Lifecycle's sweep follows up the candidate whose follow-up was lost, as it does
    # for any run: the re-audit on the audited rows, the evaluation; not submitted.
    run = runs[unfollowed.pk]
    assert (run.version, run.outcome, run.followed_up_at) == (lost, "awaiting_validation", None)
    assert run.params["constraint"] == "equalized_odds"
    assert retraining.retraining_follow_up_sweep() == 1
    run.refresh_from_db()
    assert run.outcome == "candidate_ready"
    assert run.follow_up_audit.dataset == held_out and run.follow_up_audit.bootstrap == 50
    assert run.evaluation.dataset == held_out
    assert not Review.objects.filter(version=lost).exists()

    run = runs[failed.pk]
    assert (run.status, run.version, run.outcome) == ("failed", None, "pending")
    assert run.error == "fairlearn cannot mitigate on this data"

    run = runs[interrupted.pk]
    assert run.status == "failed" and "Start the mitigation again" in run.error
    assert run.finished_at is not None
    # No run is left active: the owner can mitigate again at once.
    assert not RetrainingRun.objects.filter(status__in=["queued", "running"]).exists()
    assert ModelVersion.objects.filter(registered_model=model).count() == 3
