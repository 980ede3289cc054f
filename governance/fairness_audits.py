"""Fairness audits and mitigation runs: services (writes) and their reads.

Writes follow the house pattern: check rights and inputs, lock, write, audit
event in the same transaction, job queued on commit. The worker halves
(``*_run``) are called by thin tasks in ``governance.tasks``.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import QuerySet

from common.audit import SystemActor, audit_record, canonical_bytes, to_plain_json
from common.errors import DomainError, conflict
from common.evidence import FAIRNESS_AUDIT, EvidenceItem, evidence_produced, policy_thresholds
from common.jobs import job_enqueue, job_finish
from common.metrics import positive_class
from common.permissions import get_visible, user_can
from common.storage import local_blob_path
from governance import fairness
from governance.estimators import mitigated_estimator
from governance.models import (
    Constraint,
    FairnessAudit,
    MitigationMethod,
    MitigationRun,
)
from registry import services as registry_services
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
    with local_blob_path(dataset.storage_key) as path:
        frame = read_table(path)
    with local_blob_path(version.artifact_key) as path:
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
                details={"status": report["status"], "failed_rules": failed_rules(job)},
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


# --------------------------------------------------------------------------- mitigation


def mitigation_start(
    *,
    actor: Any,
    audit: FairnessAudit,
    method: str = MitigationMethod.THRESHOLD_OPTIMIZER,
    constraint: str = Constraint.DEMOGRAPHIC_PARITY,
    random_state: int = 0,
) -> MitigationRun:
    """Queue a mitigation of a failed audit; the model's owner (manage right) only."""
    version = audit.version
    if not user_can(actor, "manage", version) or not user_can(actor, "register", version):
        raise DomainError(
            "permission_denied",
            "Only the model's owner (manage and register rights) starts a mitigation.",
            status=403,
        )
    if method not in MitigationMethod.values:
        raise DomainError("invalid", f"Unknown method {method!r}.", details={"method": method})
    if constraint not in Constraint.values:
        raise DomainError(
            "invalid", f"Unknown constraint {constraint!r}.", details={"constraint": constraint}
        )
    if audit.status != "succeeded" or audit.passed is not False:
        raise conflict(
            "audit_not_failed",
            "Only a completed audit that failed can be mitigated "
            f"(this one is {audit.status}, passed={audit.passed}).",
        )
    if version.registered_model.task != "classification":
        raise DomainError(
            "unsupported", "fairlearn's mitigators handle binary classification only."
        )
    with transaction.atomic():
        run = MitigationRun.objects.create(
            audit=audit,
            version=version,
            method=method,
            constraint=constraint,
            random_state=random_state,
            requested_by=actor,
        )
        audit_record(
            actor=actor,
            action="governance.mitigation.requested",
            obj=run,
            after={"audit": audit.pk, "method": method, "constraint": constraint},
        )
        job_enqueue(run)
    return run


def mitigation_run(*, job: MitigationRun) -> MitigationRun:
    """Fit the mitigator, register the candidate version (validated by the registry)."""
    audit = FairnessAudit.objects.select_related("dataset").get(pk=job.audit_id)
    version = ModelVersion.objects.select_related("registered_model").get(pk=job.version_id)
    with local_blob_path(audit.dataset.storage_key) as path:
        frame = read_table(path)
    with local_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    try:
        candidate = mitigated_estimator(
            estimator,
            frame,
            features=version.feature_names,
            target=audit.target_column,
            sensitive=audit.sensitive_columns,
            method=job.method,
            constraint=job.constraint,
            random_state=job.random_state,
            classes=_classes(version, estimator),
        )
    except fairness.FairnessInputError as exc:
        raise AuditInputError(str(exc)) from None
    except ValueError as exc:  # fairlearn refuses the data (e.g. one class in a group)
        raise AuditInputError(f"fairlearn cannot mitigate on this data: {exc}") from None

    import skops.io as sio

    artifact = io.BytesIO(sio.dumps(candidate))
    with transaction.atomic():
        new = registry_services.model_version_register(
            actor=job.requested_by,
            model=version.registered_model,
            artifact=artifact,
            training_dataset=audit.dataset,
            target_column=audit.target_column,
            parent_number=version.number,
            source_run_id=f"mitigation-{job.pk}",
            description=(
                f"{MitigationMethod(job.method).label} ({job.constraint}) of v{version.number} "
                f"after fairness audit #{audit.pk} failed."
            ),
            tags=["fairness-mitigation"],
        )
        job.candidate = new
        MitigationRun.objects.filter(pk=job.pk).update(candidate=new)
        job_finish(job, log=f"registered candidate v{new.number}")
        audit_record(
            actor=SystemActor(f"governance.mitigate#{job.pk}"),
            action="governance.mitigation.candidate_registered",
            obj=job,
            after={"candidate": new.number},
        )
    return job


def mitigation_follow_up(*, version_id: int) -> FairnessAudit | None:
    """Once a mitigation's candidate is ready, audit it the way its parent was audited.

    Called from the ``registry.version.ready`` event. Idempotent: the run row
    is locked and its follow-up set once.
    """
    with transaction.atomic():
        run = (
            MitigationRun.objects.select_for_update()
            .filter(candidate_id=version_id, follow_up__isnull=True)
            .select_related("audit")
            .first()
        )
        if run is None:
            return None
        candidate = ModelVersion.objects.select_related("registered_model").get(pk=version_id)
        follow_up = fairness_audit_start(
            actor=run.requested_by,
            version=candidate,
            dataset=run.audit.dataset,
            target_column=run.audit.target_column,
            sensitive_columns=run.audit.sensitive_columns,
            bootstrap=run.audit.bootstrap,
            random_state=run.audit.random_state,
        )
        MitigationRun.objects.filter(pk=run.pk).update(follow_up=follow_up)
    return follow_up


def on_registry_event(name: str, payload: dict[str, Any]) -> None:
    """Event listener: a mitigation candidate that became ready gets its audit."""
    if name == "registry.version.ready":
        mitigation_follow_up(version_id=payload["version_id"])


def mitigation_follow_up_sweep() -> int:
    """Catch up on follow-ups whose event was lost (a worker died right after the
    candidate's validation committed). Run by beat; returns how many it queued."""
    waiting = MitigationRun.objects.filter(
        follow_up__isnull=True, candidate__status=VersionStatus.READY
    ).values_list("candidate_id", flat=True)
    return sum(mitigation_follow_up(version_id=pk) is not None for pk in list(waiting[:100]))


# --------------------------------------------------------------------------- reads


def audit_list(*, user: Any, version: ModelVersion) -> QuerySet[FairnessAudit]:
    return (
        FairnessAudit.objects.visible_to(user, "view")
        .filter(version=version)
        .select_related("dataset", "requested_by", "version__registered_model")
        .order_by("-queued_at")
    )


def audit_get(*, user: Any, version: ModelVersion, pk: Any) -> FairnessAudit:
    return get_visible(
        FairnessAudit.objects.select_related("dataset", "requested_by", "version"),
        user,
        f"Fairness audit {pk}",
        pk=pk,
        version=version,
    )


def latest_audit(*, version: ModelVersion) -> FairnessAudit | None:
    return (
        FairnessAudit.objects.filter(version=version, status="succeeded")
        .select_related("dataset")
        .order_by("-finished_at")
        .first()
    )


def mitigation_list(*, user: Any, version: ModelVersion) -> QuerySet[MitigationRun]:
    return (
        MitigationRun.objects.visible_to(user, "view")
        .filter(version=version)
        .select_related("audit", "candidate", "follow_up", "requested_by")
        .order_by("-queued_at")
    )
