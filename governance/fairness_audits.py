"""Fairness audits: services (writes) and their reads.

A failed audit is mitigated by a retraining run (``fairness_mitigation``):
``lifecycle.retraining.fairness_mitigation_request``.

Writes follow the house pattern: check rights and inputs, lock, write, audit
event in the same transaction, job queued on commit. The worker halves
(``*_run``) are called by thin tasks in ``governance.tasks``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction

from common.audit import SystemActor, audit_record, canonical_bytes, to_plain_json
from common.errors import DomainError, conflict
from common.evidence import (
    FAIRNESS_AUDIT,
    EvidenceItem,
    evidence_produced,
    policy_thresholds,
)
from common.jobs import job_enqueue, job_finish
from common.metrics import positive_class
from common.permissions import user_can
from common.storage import cached_blob_path
from governance import fairness
from governance.models import FairnessAudit
from registry.artifacts import load_estimator
from registry.choices import VersionStatus
from registry.models import Dataset, ModelVersion
from registry.selectors import dataset_schema_problems
from registry.tables import read_table

AUDIT_ACTIONS = ("register", "approve")  # pipelines and validators may audit
MAX_SENSITIVE_COLUMNS = 4
MAX_BOOTSTRAP = 1000


class AuditInputError(ValueError):
    """Data that cannot be audited (the job fails for good, with this reason)."""


# --------------------------------------------------------------------------- audits


def fairness_audit_start(
    *,
    actor: Any,
    version: ModelVersion,
    dataset: Dataset,
    target_column: str,
    sensitive_columns: list[str],
    bootstrap: int = 0,
    random_state: int = 0,
) -> FairnessAudit:
    """Queue a fairness audit, with the policy's thresholds frozen on the row now.

    Everything that can be checked without the data is checked here, so a bad
    request is a 4xx at once: rights, version state, the dataset's model, the
    sensitive and target columns, the dataset's schema against the signature.
    """
    if not any(user_can(actor, action, version) for action in AUDIT_ACTIONS):
        raise DomainError(
            "permission_denied",
            "Auditing a version needs the register or approve right on its model.",
            status=403,
        )
    if version.status != VersionStatus.READY:
        raise conflict(
            "version_not_ready", f"{version} is {version.status}; only ready versions are audited."
        )
    if dataset.registered_model_id != version.registered_model_id:
        raise DomainError("invalid", "The dataset belongs to another model.")
    sensitive = [str(c) for c in sensitive_columns]
    if (
        not sensitive
        or len(sensitive) > MAX_SENSITIVE_COLUMNS
        or len(set(sensitive)) != len(sensitive)
    ):
        raise DomainError(
            "invalid",
            f"Give 1 to {MAX_SENSITIVE_COLUMNS} distinct sensitive feature columns.",
            details={"sensitive_features": sensitive},
        )
    if target_column in sensitive:
        raise DomainError("invalid", "The target column cannot also be a sensitive feature.")
    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise DomainError("invalid", f"bootstrap must be between 0 and {MAX_BOOTSTRAP}.")
    problems = dataset_schema_problems(version, dataset, extra=[target_column, *sensitive])
    if problems:
        raise DomainError(
            "invalid_dataset",
            f"The dataset {dataset} cannot be used to audit {version}: {problems[0]['message']}",
            details={"problems": problems},
        )
    thresholds = policy_thresholds(version, FAIRNESS_AUDIT)
    min_group_size = int(thresholds.pop("min_group_size", 30))
    unknown = sorted(set(thresholds) - set(fairness.DEFAULT_THRESHOLDS))
    if unknown:
        raise conflict(
            "policy_misconfigured", f"The approval policy names unknown fairness rules {unknown}."
        )
    with transaction.atomic():
        job = FairnessAudit.objects.create(
            version=version,
            dataset=dataset,
            dataset_sha256=dataset.sha256,
            target_column=target_column,
            sensitive_columns=sensitive,
            thresholds=thresholds,
            min_group_size=min_group_size,
            bootstrap=bootstrap,
            random_state=random_state,
            requested_by=None if isinstance(actor, SystemActor) else actor,
        )
        audit_record(
            actor=actor,
            action="governance.fairness_audit.requested",
            obj=job,
            after={
                "version": version.number,
                "dataset": dataset.pk,
                "sensitive_features": sensitive,
                "thresholds": thresholds,
                "min_group_size": min_group_size,
            },
        )
        job_enqueue(job)
    return job


def _classes(version: ModelVersion, estimator: Any) -> list[Any]:
    """The version's classes as recorded at validation; the loaded estimator's
    ``classes_`` for a version validated before they were recorded."""
    classes = version.classes
    if classes is None and getattr(estimator, "classes_", None) is not None:
        classes = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
    if classes is None:
        raise AuditInputError(f"{version} records no classes: its positive class is unknown.")
    return classes


def _positive_label(version: ModelVersion, estimator: Any) -> Any:
    """The one positive class (``common.metrics.positive_class``: ``classes[1]``)."""
    classes = _classes(version, estimator)
    if positive_class(classes) is None:
        raise AuditInputError(
            f"The fairness audit handles binary classifiers; {version} has classes {classes}."
        )
    return positive_class(classes)


def _predictions(estimator: Any, frame: pd.DataFrame, task: str) -> tuple[Any, Any]:
    try:
        y_pred = np.asarray(estimator.predict(frame))
        y_score = None
        if task == "classification" and hasattr(estimator, "predict_proba"):
            y_score = np.asarray(estimator.predict_proba(frame))[:, 1]
    except Exception as exc:  # the model itself fails on these rows: a data problem
        raise AuditInputError(f"The model cannot predict on this dataset: {exc}") from None
    return y_pred, y_score


def audit_digest(job: FairnessAudit) -> str:
    bundle = {
        "version": job.version_id,
        "dataset_sha256": job.dataset_sha256,
        "target": job.target_column,
        "sensitive": job.sensitive_columns,
        "thresholds": job.thresholds,
        "min_group_size": job.min_group_size,
        "report": job.report,
    }
    return hashlib.sha256(canonical_bytes(to_plain_json(bundle))).hexdigest()


def fairness_audit_run(*, job: FairnessAudit) -> FairnessAudit:
    """The worker's half: predict on the dataset, audit by group, file the evidence."""
    version = ModelVersion.objects.select_related("registered_model").get(pk=job.version_id)
    dataset = Dataset.objects.get(pk=job.dataset_id)
    if dataset.sha256 != job.dataset_sha256:
        raise AuditInputError("The dataset changed since the audit was requested.")
    with cached_blob_path(dataset.storage_key) as path:
        frame = read_table(path)
    with cached_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    task = version.registered_model.task
    inputs = frame[version.feature_names]
    y_pred, y_score = _predictions(estimator, inputs, task)
    try:
        report = fairness.audit(
            frame[job.target_column],
            y_pred,
            frame[job.sensitive_columns],
            task=task,
            thresholds=job.thresholds,
            min_group_size=job.min_group_size,
            y_score=y_score,
            bootstrap=job.bootstrap,
            random_state=job.random_state,
            pos_label=_positive_label(version, estimator) if task == "classification" else 1,
        )
    except fairness.FairnessInputError as exc:
        raise AuditInputError(str(exc)) from None
    actor = SystemActor(f"governance.fairness_audit#{job.pk}")
    with transaction.atomic():
        job.report = to_plain_json(report)
        job.passed = bool(report["passed"])
        job.sha256 = audit_digest(job)
        FairnessAudit.objects.filter(pk=job.pk).update(
            report=job.report, passed=job.passed, sha256=job.sha256
        )
        job_finish(job, log=f"audited {report['n_samples']} rows: {report['status']}")
        audit_record(
            actor=actor,
            action="governance.fairness_audit.completed",
            obj=job,
            after={"status": report["status"], "summary": report["summary"], "sha256": job.sha256},
        )
        evidence_produced(
            actor=actor,
            item=EvidenceItem(
                version_id=version.pk,
                kind=FAIRNESS_AUDIT,
                sha256=job.sha256,
                passed=job.passed,
                summary=audit_summary(job),
                source=f"governance.fairnessaudit:{job.pk}",
                details={
                    "status": report["status"],
                    "failed_rules": failed_rules(job),
                    # What it was judged by and on (governance.evidence_rules).
                    "thresholds": {**job.thresholds, "min_group_size": job.min_group_size},
                    "sensitive_features": list(job.sensitive_columns),
                },
            ),
        )
    return job


def failed_rules(job: FairnessAudit) -> list[dict[str, Any]]:
    return [r for r in (job.report or {}).get("rules", []) if r["status"] != "passed"]


def audit_summary(job: FairnessAudit) -> str:
    report = job.report or {}
    counts = report.get("summary", {})
    head = (
        f"{report.get('status', '?')} on {report.get('n_samples', 0)} rows by "
        f"{', '.join(job.sensitive_columns)}: {counts.get('passed', 0)} rules passed, "
        f"{counts.get('failed', 0)} failed, {counts.get('not_computable', 0)} not computable"
    )
    worst = failed_rules(job)[:2]
    if worst:
        head += "; " + "; ".join(f"{r['rule']} on {r['scope']}: {_fmt(r['value'])}" for r in worst)
    return head


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
