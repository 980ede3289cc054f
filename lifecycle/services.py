"""Lifecycle writes: evaluations (retraining and deployments come later)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction

from common.audit import SystemActor, audit_record, canonical_bytes, to_plain_json
from common.errors import DomainError
from common.jobs import job_enqueue, job_finish
from common.permissions import user_can
from common.storage import local_blob_path
from lifecycle import evaluation as ev
from lifecycle.models import Evaluation
from registry.artifacts import load_estimator
from registry.choices import VersionStatus
from registry.models import Dataset, ModelVersion
from registry.selectors import champion_for
from registry.tables import read_table

EVALUATION_ACTIONS = ("register", "approve")


def evaluation_start(
    *, actor: Any, version: ModelVersion, dataset: Dataset, target_column: str
) -> Evaluation:
    """Queue an evaluation of a ready version on one of its model's datasets.

    Allowed to whoever may register versions (pipelines) or sign them off
    (validators). Columns are checked now, against the stored schema, so that
    a wrong request is refused at once rather than failing in the worker.
    """
    if not any(user_can(actor, action, version) for action in EVALUATION_ACTIONS):
        raise DomainError(
            "permission_denied",
            "Evaluating a version needs the register or approve right on its model.",
            status=403,
        )
    if version.status != VersionStatus.READY:
        raise DomainError(
            "version_not_ready",
            f"{version} is {version.status}; only ready versions are evaluated.",
            status=409,
        )
    if dataset.registered_model_id != version.registered_model_id:
        raise DomainError("invalid", "The dataset belongs to another model.")
    columns = set(dataset.column_names)
    missing = [c for c in [*version.feature_names, target_column] if c not in columns]
    if missing:
        raise DomainError(
            "invalid_dataset",
            f"The dataset {dataset} has no column(s) {missing} that the evaluation needs.",
            details={"missing_columns": missing},
        )
    with transaction.atomic():
        job = Evaluation.objects.create(
            version=version,
            dataset=dataset,
            dataset_sha256=dataset.sha256,
            target_column=target_column,
            requested_by=actor,
        )
        audit_record(
            actor=actor,
            action="lifecycle.evaluation.requested",
            obj=job,
            after={"version": version.number, "dataset": dataset.pk, "target": target_column},
        )
        job_enqueue(job)
    return job


def _score(version: ModelVersion, frame: Any, target: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with local_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    features = version.feature_names
    task = version.registered_model.task
    report = ev.evaluate(estimator, frame, features=features, target=target, task=task)
    importance = ev.permutation_importance_report(
        estimator, frame, features=features, target=target, task=task
    )
    return report, importance


def evaluation_digest(job: Evaluation) -> str:
    bundle = {
        "version": job.version_id,
        "dataset_sha256": job.dataset_sha256,
        "target": job.target_column,
        "report": job.report,
        "champion": job.champion_id,
        "champion_report": job.champion_report,
        "importance": job.importance,
    }
    return hashlib.sha256(canonical_bytes(to_plain_json(bundle))).hexdigest()


def evaluation_run(*, job: Evaluation) -> Evaluation:
    """The worker's half: score the version and the champion on the same rows.

    Bad data (missing columns, NaN targets, a model that cannot predict on it)
    raises ``EvaluationInputError``, which the task records as a final failure;
    anything else propagates and is retried.
    """
    version = ModelVersion.objects.select_related("registered_model").get(pk=job.version_id)
    dataset = Dataset.objects.get(pk=job.dataset_id)
    if dataset.sha256 != job.dataset_sha256:
        raise ev.EvaluationInputError("The dataset changed since the evaluation was requested.")
    with local_blob_path(dataset.storage_key) as path:
        frame = read_table(path)
    report, importance = _score(version, frame, job.target_column)
    champion = champion_for(model=version.registered_model)
    champion_report = None
    if champion is not None and champion.pk != version.pk:
        champion_report, _ = _score(champion, frame, job.target_column)
    else:
        champion = None
    with transaction.atomic():
        job.report = to_plain_json(report)
        job.importance = to_plain_json(importance)
        job.champion = champion
        job.champion_report = to_plain_json(champion_report) if champion_report else None
        job.sha256 = evaluation_digest(job)
        Evaluation.objects.filter(pk=job.pk).update(
            report=job.report,
            importance=job.importance,
            champion=champion,
            champion_report=job.champion_report,
            sha256=job.sha256,
        )
        job_finish(job, log=f"evaluated on {report['rows']} rows")
        audit_record(
            actor=SystemActor(f"lifecycle.evaluate#{job.pk}"),
            action="lifecycle.evaluation.completed",
            obj=job,
            after={
                "metrics": report["metrics"],
                "sha256": job.sha256,
                "champion": champion.number if champion else None,
            },
        )
    return job
