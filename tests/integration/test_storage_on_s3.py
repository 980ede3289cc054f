"""End to end on an S3-compatible server (moto's, on 127.0.0.1) with a real worker:
registration → validation → evaluation → drift baseline and check → serving load,
every stored byte in the bucket and nothing in a shared local folder."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import boto3
import pyarrow as pa
import pytest

from registry import services as registry_services
from registry.models import ModelVersion
from tests.conftest import (
    WorkerProcess,
    client_for,
    csv_bytes,
    register,
    storage_env,
    training_frame,
    wait_for,
)
from tests.monitoring.conftest import prediction_frame, upload_training

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def s3_worker(
    s3_storage: dict[str, Any], worker_env: dict[str, str], real_processes: Any
) -> WorkerProcess:
    env = dict(worker_env)
    env.pop("ARTIFACT_ROOT", None)
    env.update(storage_env(s3_storage))
    assert env["BLOB_STORAGE"] == "s3"
    return real_processes.worker(name="s3-worker", env=env)


def test_registration_to_serving_with_every_byte_in_the_bucket(
    s3_storage: dict[str, Any], s3_worker: WorkerProcess, model: Any, personas: Any, settings: Any
) -> None:
    from lifecycle.models import Evaluation
    from lifecycle.serving import load_version
    from monitoring import services as monitoring_services
    from monitoring.models import CheckRun, ReferenceProfile

    dataset = upload_training(model, personas.owner)
    version = register(model, personas.bot, training_dataset=dataset, target_column="label")
    wait_for(
        lambda: ModelVersion.objects.get(pk=version.pk).status == "ready",
        timeout=90,
        message="validation on the worker",
    )
    wait_for(
        lambda: ReferenceProfile.objects.filter(version=version).exists(),
        timeout=90,
        message="the drift baseline built by the worker",
    )

    holdout = registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="holdout",
        role="evaluation",
        upload=io.BytesIO(csv_bytes(training_frame(300, seed=4))),
        filename="h.csv",
    )
    response = client_for(personas.bot).post(
        f"/api/v1/models/credit/versions/{version.number}/evaluations/",
        {"dataset": holdout.pk, "target_column": "label"},
        format="json",
    )
    assert response.status_code == 202, response.content
    evaluation = wait_for(
        lambda: Evaluation.objects.filter(pk=response.json()["id"], status="succeeded").first(),
        timeout=90,
        message="the evaluation on the worker",
    )
    assert evaluation.report["rows"] == 300

    version = ModelVersion.objects.get(pk=version.pk)
    monitor = monitoring_services.monitor_create(
        actor=personas.owner,
        model=model,
        version=version,
        name="main",
        min_rows=50,
        checks=["drift"],
        drift_method="rows",
    )
    frame = prediction_frame(1000, seed=1, shift=1.0)
    monitoring_services.prediction_batch_ingest(
        actor=personas.bot,
        version=version,
        batch_id="shifted",
        table=pa.Table.from_pandas(frame, preserve_index=False),
    )
    run, _ = monitoring_services.check_run_request(
        actor=personas.owner, monitor=monitor, window_end=dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    )
    run = wait_for(
        lambda: CheckRun.objects.filter(pk=run.pk, status="succeeded").first(),
        timeout=90,
        message="the drift check on the worker",
    )
    assert run.row_count == 1000
    assert "age" in [c["column"] for c in run.drift["columns"] if c["drifted"]]

    # Serving loads the model from the bucket, into this process's empty cache.
    loaded = load_version(version.pk)
    assert loaded is not None

    options = s3_storage["OPTIONS"]
    listing = boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        region_name=options["region_name"],
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
    ).list_objects_v2(Bucket=options["bucket_name"])
    keys = {o["Key"] for o in listing["Contents"]}
    assert {version.artifact_key, dataset.storage_key, holdout.storage_key} <= keys
    assert {k.split("/")[0] for k in keys} == {"artifacts", "datasets", "batches", "profiles"}
    assert "registry.tasks.validate_version" in s3_worker.output()
    assert "lifecycle.tasks.heavy_evaluate" in s3_worker.output()
