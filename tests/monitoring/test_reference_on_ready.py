"""The drift baseline is a worker's job (``ProfileBuild``): queued when a version becomes
ready, or by an ingestion or a monitor creation that finds none; never built by a request."""

from __future__ import annotations

import pyarrow as pa
import pytest

from common.models import AuditEvent
from governance.models import Evidence
from monitoring import services
from monitoring.models import PredictionBatch, ProfileBuild, ReferenceProfile
from monitoring.tasks import heavy_build_profile
from tests.conftest import register, validate
from tests.monitoring.conftest import prediction_frame, upload_training

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    calls: list[tuple[str, list]] = []
    from celery import current_app

    monkeypatch.setattr(
        current_app, "send_task", lambda name, args=None, **kw: calls.append((name, args))
    )
    return calls


@pytest.fixture
def bare(model, personas, sent, django_capture_on_commit_callbacks):
    """A ready version with a training dataset and, so far, no baseline."""
    dataset = upload_training(model, personas.owner)
    with django_capture_on_commit_callbacks(execute=True):
        return validate(
            register(model, personas.bot, training_dataset=dataset, target_column="label")
        )


def ingest(version, actor, batch_id, **frame):
    table = pa.Table.from_pandas(prediction_frame(300, **frame), preserve_index=False)
    batch, _ = services.prediction_batch_ingest(
        actor=actor, version=version, batch_id=batch_id, table=table
    )
    return batch


def test_the_ready_event_queues_one_build_and_the_worker_files_the_baseline_once(
    bare, personas, sent
):
    build = ProfileBuild.objects.get(version=bare)
    assert build.status == "queued"
    assert ("monitoring.tasks.heavy_build_profile", [build.pk]) in sent
    assert not ReferenceProfile.objects.exists()  # nothing built inline

    heavy_build_profile(build.pk)
    build.refresh_from_db()
    assert build.status == "succeeded" and build.attempts == 1
    profile = ReferenceProfile.objects.get(version=bare)
    assert profile.row_count == bare.training_dataset.row_count
    evidence = Evidence.objects.get(version=bare, kind="drift_baseline")
    assert evidence.sha256 == profile.sha256 and evidence.passed is True

    heavy_build_profile(build.pk)  # a redelivered message: the job is finished
    assert services.reference_profile_request(version=bare) is None  # nothing left to do
    assert ReferenceProfile.objects.count() == 1
    assert Evidence.objects.filter(version=bare, kind="drift_baseline").count() == 1


def test_an_ingestion_before_the_baseline_stores_the_batch_and_the_build_summarizes_it(
    bare, personas, django_capture_on_commit_callbacks
):
    first = ingest(bare, personas.bot, "early", seed=1)
    second = ingest(bare, personas.bot, "early-too", seed=2, shift=1.0)
    assert first.summary == {} and second.summary == {}
    assert not ReferenceProfile.objects.exists()  # the upload did not wait on it
    build = ProfileBuild.objects.get(version=bare)  # one queued build serves both

    heavy_build_profile(build.pk)
    # Batches ingested once the baseline exists are summarized at ingestion: the
    # early ones now hold exactly what ingestion would have given them.
    late = ingest(bare, personas.bot, "late", seed=1)
    late_shifted = ingest(bare, personas.bot, "late-too", seed=2, shift=1.0)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.summary and first.summary == late.summary
    assert first.output_summary and first.output_summary == late.output_summary
    assert second.summary == late_shifted.summary
    assert ProfileBuild.objects.count() == 1
    assert "2 stored batches summarized" in ProfileBuild.objects.get().log


def test_creating_a_monitor_queues_the_build_instead_of_waiting_on_it(bare, personas):
    ProfileBuild.objects.all().delete()  # as if the ready event had been lost
    services.monitor_create(
        actor=personas.owner, model=bare.registered_model, version=bare, name="daily"
    )
    assert not ReferenceProfile.objects.exists()
    assert ProfileBuild.objects.filter(version=bare, status="queued").count() == 1


def test_a_batch_stored_while_a_build_runs_gets_a_build_of_its_own(bare, personas):
    """The build may have passed its summary pass: only a *queued* build covers a new batch."""
    build = ProfileBuild.objects.get(version=bare)
    ProfileBuild.objects.filter(pk=build.pk).update(status="running", attempts=1)
    ingest(bare, personas.bot, "during")
    assert ProfileBuild.objects.filter(version=bare, status="queued").count() == 1
    ingest(bare, personas.bot, "during-too")
    assert ProfileBuild.objects.filter(version=bare).count() == 2


def test_a_version_without_training_data_gets_no_build(model, personas, sent):
    version = validate(register(model, personas.bot))
    assert services.reference_profile_request(version=version) is None
    ingest(version, personas.bot, "b")
    assert PredictionBatch.objects.get(version=version).summary == {}
    assert not ProfileBuild.objects.exists() and not ReferenceProfile.objects.exists()


def test_a_build_that_keeps_failing_is_audited_and_the_next_ingestion_asks_again(
    bare, personas, settings, monkeypatch
):
    settings.JOB_MAX_ATTEMPTS = 1

    def storage_down(**kwargs):
        raise OSError("storage down")

    monkeypatch.setattr(services, "reference_profile_ensure", storage_down)
    build = ProfileBuild.objects.get(version=bare)
    heavy_build_profile(build.pk)
    build.refresh_from_db()
    assert build.status == "failed" and build.error == "OSError: storage down"
    assert AuditEvent.objects.filter(
        action="monitoring.profile.fail", object_id=str(build.pk)
    ).exists()
    ingest(bare, personas.bot, "after")
    assert ProfileBuild.objects.filter(version=bare, status="queued").count() == 1
