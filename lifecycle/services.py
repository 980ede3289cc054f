"""Lifecycle writes: evaluations and per-prediction explanations (retraining and
deployments have their own modules)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction

from common.audit import SystemActor, audit_record, canonical_bytes, to_plain_json
from common.errors import DomainError
from common.evidence import (
    EVALUATION_REPORT,
    EXPLAINABILITY,
    EvidenceItem,
    evidence_produced,
    policy_thresholds,
)
from common.jobs import job_enqueue, job_finish
from common.permissions import user_can
from common.storage import cached_blob_path
from lifecycle import attribution
from lifecycle import evaluation as ev
from lifecycle.models import Evaluation, Explanation
from registry.artifacts import load_estimator
from registry.choices import VersionStatus
from registry.models import Dataset, ModelVersion
from registry.selectors import champion_for, dataset_schema_problems
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
    problems = dataset_schema_problems(version, dataset, extra=[target_column])
    if problems:
        raise DomainError(
            "invalid_dataset",
            f"The dataset {dataset} cannot be used to evaluate {version}: "
            f"{problems[0]['message']}.",
            details={
                "problems": problems,
                "missing_columns": [p["column"] for p in problems if "missing" in p["message"]],
            },
        )
    with transaction.atomic():
        job = Evaluation.objects.create(
            version=version,
            dataset=dataset,
            dataset_sha256=dataset.sha256,
            target_column=target_column,
            requested_by=None if isinstance(actor, SystemActor) else actor,
            thresholds=policy_thresholds(version, EVALUATION_REPORT),
        )
        audit_record(
            actor=actor,
            action="lifecycle.evaluation.requested",
            obj=job,
            after={
                "version": version.number,
                "dataset": dataset.pk,
                "target": target_column,
                "thresholds": job.thresholds,
            },
        )
        job_enqueue(job)
    return job


def _score(version: ModelVersion, frame: Any, target: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with cached_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    features = version.feature_names
    task = version.registered_model.task
    # The version's recorded classes fix the positive class (common.metrics); a version
    # validated before they were recorded falls back to the loaded estimator's classes_.
    report = ev.evaluate(
        estimator, frame, features=features, target=target, task=task, classes=version.classes
    )
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
        "champion_importance": job.champion_importance,
        "thresholds": job.thresholds,
        "passed": job.passed,
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
    with cached_blob_path(dataset.storage_key) as path:
        frame = read_table(path)
    report, importance = _score(version, frame, job.target_column)
    champion = champion_for(model=version.registered_model)
    champion_report = champion_importance = None
    if champion is not None and champion.pk != version.pk:
        champion_report, champion_importance = _score(champion, frame, job.target_column)
    else:
        champion = None
    failures = ev.judge_thresholds(report["metrics"], job.thresholds or {})
    actor = SystemActor(f"lifecycle.evaluate#{job.pk}")
    with transaction.atomic():
        job.report = to_plain_json(report)
        job.importance = to_plain_json(importance)
        job.champion = champion
        job.champion_report = to_plain_json(champion_report) if champion_report else None
        job.champion_importance = to_plain_json(champion_importance)
        job.threshold_failures = to_plain_json(failures)
        job.passed = not failures
        job.sha256 = evaluation_digest(job)
        Evaluation.objects.filter(pk=job.pk).update(
            report=job.report,
            importance=job.importance,
            champion=champion,
            champion_report=job.champion_report,
            champion_importance=job.champion_importance,
            threshold_failures=job.threshold_failures,
            passed=job.passed,
            sha256=job.sha256,
        )
        job_finish(job, log=f"evaluated on {report['rows']} rows")
        audit_record(
            actor=actor,
            action="lifecycle.evaluation.completed",
            obj=job,
            after={
                "metrics": report["metrics"],
                "sha256": job.sha256,
                "champion": champion.number if champion else None,
                "passed": job.passed,
                "failures": job.threshold_failures,
            },
        )
        _announce_evidence(actor, job, version)
    return job


def _announce_evidence(actor: Any, job: Evaluation, version: ModelVersion) -> None:
    """File the report and the importance as evidence, in the job's transaction."""
    source = f"lifecycle.evaluation:{job.pk}"
    metrics = ", ".join(
        f"{name} {value:.4g}" for name, value in job.report["metrics"].items() if value is not None
    )
    verdict = (
        "meets the policy's metric thresholds"
        if job.passed
        else "misses thresholds: "
        + ("; ".join(f"{f['metric']} {f['reason']}" for f in job.threshold_failures))
    )
    evidence_produced(
        actor=actor,
        item=EvidenceItem(
            version_id=version.pk,
            kind=EVALUATION_REPORT,
            sha256=job.sha256,
            passed=job.passed,
            summary=f"{metrics} on {job.report['rows']} rows; {verdict}",
            source=source,
            details={
                "failures": job.threshold_failures,
                "thresholds": job.thresholds,
                # The figures the thresholds judged, for the evidence summary.
                "metrics": {name: job.report["metrics"].get(name) for name in job.thresholds},
            },
        ),
    )
    importance = {"version": version.pk, "dataset_sha256": job.dataset_sha256, **job.importance}
    top = ", ".join(row["feature"] for row in job.importance["features"][:3])
    evidence_produced(
        actor=actor,
        item=EvidenceItem(
            version_id=version.pk,
            kind=EXPLAINABILITY,
            sha256=hashlib.sha256(canonical_bytes(to_plain_json(importance))).hexdigest(),
            passed=None,
            summary=f"permutation importance ({job.importance['scoring']}); top features: {top}",
            source=source,
        ),
    )


# --- per-prediction explanations ----------------------------------------------------

EXPLANATION_MAX_ROWS = 50
# Rows read from the newest prediction batches before sampling (a batch file is read
# whole; this bounds how many batches are opened).
EXPLANATION_MAX_BATCHES = 5


def explanation_start(*, actor: Any, version: ModelVersion, sample_size: int = 10) -> Explanation:
    """Queue per-prediction explanations of ``sample_size`` of a version's rows (a worker
    computes them). The same rights as an evaluation."""
    if not any(user_can(actor, action, version) for action in EVALUATION_ACTIONS):
        raise DomainError(
            "permission_denied",
            "Explaining a version's predictions needs the register or approve right on its model.",
            status=403,
        )
    if version.status != VersionStatus.READY:
        raise DomainError(
            "version_not_ready",
            f"{version} is {version.status}; only ready versions are explained.",
            status=409,
        )
    if not 1 <= int(sample_size) <= EXPLANATION_MAX_ROWS:
        raise DomainError(
            "invalid",
            f"Explain between 1 and {EXPLANATION_MAX_ROWS} rows.",
            details={"sample_size": sample_size},
        )
    with transaction.atomic():
        job = Explanation.objects.create(
            version=version,
            sample_size=int(sample_size),
            requested_by=None if isinstance(actor, SystemActor) else actor,
        )
        audit_record(
            actor=actor,
            action="lifecycle.explanation.requested",
            obj=job,
            after={"version": version.number, "sample_size": job.sample_size},
        )
        job_enqueue(job)
    return job


def _logged_rows(version: ModelVersion, features: list[str]) -> Any:
    """The newest logged rows of ``version`` (its prediction batches), or None.

    None too when the model's data policy drops or hashes one of the version's
    inputs: the stored values are then not what the model read.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    from monitoring.data_policy import rules_for
    from monitoring.models import PredictionBatch

    rules = rules_for(model_id=version.registered_model_id)
    if set(features) & (rules.dropped | rules.hashed):
        return None
    frames = []
    batches = PredictionBatch.objects.filter(version=version).order_by("-last_at", "-pk")
    for key in batches.values_list("storage_key", flat=True)[:EXPLANATION_MAX_BATCHES]:
        with cached_blob_path(key) as path:
            table = pq.read_table(path)
        present = [c for c in features if c in table.column_names]
        if len(present) == len(features):
            frames.append(table.select(features).to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else None


def explanation_run(*, job: Explanation) -> Explanation:
    """The worker's half: sample the rows, explain them, store the result.

    Rows the model cannot score, or no rows at all, raise ``ExplanationInputError``
    (a final failure, with the reason); anything else is retried.
    """
    from lifecycle.selectors import latest_evaluation

    version = ModelVersion.objects.select_related("registered_model").get(pk=job.version_id)
    features = version.feature_names
    evaluation = latest_evaluation(version=version)
    reference = None
    if evaluation is not None:
        with cached_blob_path(evaluation.dataset.storage_key) as path:
            reference = read_table(path)
    rows, source = _logged_rows(version, features), "prediction_log"
    if rows is None or rows.empty:
        rows, source = reference, "evaluation_dataset"
    if rows is None or rows.empty:
        raise attribution.ExplanationInputError(
            f"{version} has no usable logged predictions (none yet, or its data policy drops "
            "or hashes one of its inputs) and no evaluation: there are no rows to explain."
        )
    sample = rows.sample(min(job.sample_size, len(rows)), random_state=job.pk)
    with cached_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    result = attribution.explain(
        estimator,
        sample,
        features=features,
        reference=reference if reference is not None else rows,
        classes=version.classes or None,
    )
    actor = SystemActor(f"lifecycle.explain#{job.pk}")
    with transaction.atomic():
        job.result = to_plain_json(result)
        job.source = source
        Explanation.objects.filter(pk=job.pk).update(result=job.result, source=source)
        job_finish(job, log=f"explained {len(sample)} rows ({result['method']}) from {source}")
        audit_record(
            actor=actor,
            action="lifecycle.explanation.completed",
            obj=job,
            after={
                "method": result["method"],
                "rows": len(sample),
                "source": source,
                "additivity_gap": result["additivity_gap"],
            },
        )
    return job
