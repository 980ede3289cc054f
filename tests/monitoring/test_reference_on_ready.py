"""A version that becomes ready gets its drift baseline from a worker, before any monitor."""

from __future__ import annotations

import pytest

from governance.models import Evidence
from monitoring import apps
from monitoring.models import ReferenceProfile
from monitoring.tasks import heavy_build_reference_profile
from tests.conftest import register, validate
from tests.monitoring.conftest import upload_training

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    calls: list[tuple[str, list]] = []
    from celery import current_app

    monkeypatch.setattr(
        current_app, "send_task", lambda name, args=None, **kw: calls.append((name, args))
    )
    return calls


def test_the_ready_event_queues_the_baseline_and_the_worker_files_it_once(
    model, personas, sent, django_capture_on_commit_callbacks
):
    dataset = upload_training(model, personas.owner)
    with django_capture_on_commit_callbacks(execute=True):
        version = validate(
            register(model, personas.bot, training_dataset=dataset, target_column="label")
        )
    assert version.status == "ready"
    queued = [args for name, args in sent if name == apps.REFERENCE_TASK]
    assert queued == [[version.pk]]
    assert not ReferenceProfile.objects.exists()  # nothing built inline

    assert heavy_build_reference_profile(version.pk) is True
    profile = ReferenceProfile.objects.get(version=version)
    assert profile.row_count == dataset.row_count
    evidence = Evidence.objects.get(version=version, kind="drift_baseline")
    assert evidence.sha256 == profile.sha256 and evidence.passed is True

    assert heavy_build_reference_profile(version.pk) is True  # a redelivered message
    assert ReferenceProfile.objects.count() == 1
    assert Evidence.objects.filter(version=version, kind="drift_baseline").count() == 1


def test_a_version_without_training_data_or_not_ready_gets_none(model, personas, sent):
    pending = register(model, personas.bot)
    assert heavy_build_reference_profile(pending.pk) is False  # still pending
    ready = validate(pending)
    assert heavy_build_reference_profile(ready.pk) is False  # no training dataset
    assert heavy_build_reference_profile(10**9) is False  # gone
    assert not ReferenceProfile.objects.exists() and not Evidence.objects.exists()
