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

from common import metrics
from common.audit import SystemActor, audit_record, canonical_bytes, to_plain_json
from common.errors import DomainError, conflict
from common.evidence import (
    FAIRNESS_AUDIT,
    EvidenceItem,
    evaluation_request,
    evidence_produced,
    policy_thresholds,
)
from common.jobs import job_enqueue, job_finish
from common.metrics import positive_class
from common.permissions import user_can
from common.storage import local_blob_path
from governance import fairness
from governance.choices import Constraint, MitigationMethod
from governance.estimators import mitigated_estimator
from governance.models import FairnessAudit, MitigationRun
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
    _check_mitigation_data(version, audit)
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


def _check_mitigation_data(version: ModelVersion, audit: FairnessAudit) -> None:
    """A mitigation is fitted on the version's training data and judged on the audit's
    held-out rows: refuse, at once, data that cannot give both."""
    training = version.training_dataset
    if training is None:
        raise conflict(
            "no_training_data",
            f"{version} records no training dataset: a mitigation is fitted on the "
            "training data, never on the rows that audit it.",
        )
    if training.sha256 == audit.dataset_sha256:
        raise conflict(
            "audit_on_training_data",
            f"Fairness audit #{audit.pk} ran on the training data of {version}. Audit it on "
            "held-out data first: the candidate is fitted on the training rows and judged "
            "on rows it has not seen.",
            dataset=audit.dataset_id,
        )
    problems = dataset_schema_problems(
        version, training, extra=[version.target_column, *audit.sensitive_columns]
    )
    if problems:
        raise DomainError(
            "invalid_dataset",
            f"The training dataset {training} cannot fit a mitigation of {version}: "
            f"{problems[0]['message']}",
            details={"problems": problems},
        )


def _holdout_metrics(
    candidate: Any, frame: pd.DataFrame, *, target: str, classes: list[Any]
) -> dict[str, float]:
    """The candidate's metrics on the held-out audit rows, by ``common.metrics``."""
    y_pred, y_score = _predictions(candidate, frame, "classification")
    computed = metrics.compute_all(
        "classification", frame[target], y_pred, classes=classes, scores=y_score
    )
    return {name: round(value, 6) for name, value in computed.items() if value is not None}


def mitigation_run(*, job: MitigationRun) -> MitigationRun:
    """Fit the mitigator on the training data, register the candidate (validated by the
    registry) with its metrics on the audit's held-out rows.

    The candidate is authored by this job (``SystemActor``), not by the person who
    asked for it (``requested_by``): requesting a mitigation leaves the owner free to
    attest to the candidate (``governance.selectors.signing_choice``).
    """
    audit = FairnessAudit.objects.select_related("dataset").get(pk=job.audit_id)
    version = ModelVersion.objects.select_related("registered_model", "training_dataset").get(
        pk=job.version_id
    )
    training = version.training_dataset
    if training is None:  # checked when queued; versions are immutable
        raise AuditInputError(f"{version} records no training dataset.")
    if audit.dataset.sha256 != audit.dataset_sha256:
        raise AuditInputError("The audited dataset changed since the audit ran.")
    with local_blob_path(training.storage_key) as path:
        train = read_table(path)
    with local_blob_path(audit.dataset.storage_key) as path:
        holdout = read_table(path)
    with local_blob_path(version.artifact_key) as path:
        estimator, _types = load_estimator(path)
    classes = _classes(version, estimator)
    try:
        candidate = mitigated_estimator(
            estimator,
            train,
            features=version.feature_names,
            target=version.target_column,
            sensitive=audit.sensitive_columns,
            method=job.method,
            constraint=job.constraint,
            random_state=job.random_state,
            classes=classes,
        )
    except fairness.FairnessInputError as exc:
        raise AuditInputError(str(exc)) from None
    except ValueError as exc:  # fairlearn refuses the data (e.g. one class in a group)
        raise AuditInputError(f"fairlearn cannot mitigate on this data: {exc}") from None
    scores = _holdout_metrics(candidate, holdout, target=audit.target_column, classes=classes)

    import skops.io as sio

    artifact = io.BytesIO(sio.dumps(candidate))
    actor = SystemActor(f"governance.mitigate#{job.pk}")
    with transaction.atomic():
        try:
            new = registry_services.model_version_register(
                actor=actor,
                requested_by=job.requested_by,
                model=version.registered_model,
                artifact=artifact,
                metrics=scores,
                training_dataset=training,
                target_column=version.target_column,
                parent_number=version.number,
                source_run_id=f"mitigation-{job.pk}",
                description=(
                    f"{MitigationMethod(job.method).label} ({job.constraint}) of "
                    f"v{version.number} after fairness audit #{audit.pk} failed; fitted on "
                    f"{training.name} v{training.version}, metrics on {audit.dataset.name} "
                    f"v{audit.dataset.version}."
                ),
                tags=["fairness-mitigation"],
            )
        except DomainError as exc:  # e.g. the requester lost the register right since
            raise AuditInputError(exc.message) from None
        job.candidate = new
        MitigationRun.objects.filter(pk=job.pk).update(candidate=new)
        job_finish(job, log=f"registered candidate v{new.number}")
        audit_record(
            actor=actor,
            action="governance.mitigation.candidate_registered",
            obj=job,
            after={
                "candidate": new.number,
                "requested_by": job.requested_by.get_username(),
                "training_dataset": training.pk,
                "metrics_dataset": audit.dataset_id,
                "metrics": scores,
            },
        )
    return job


def mitigation_follow_up(*, version_id: int) -> FairnessAudit | None:
    """Once a mitigation's candidate is ready, audit it the way its parent was audited
    and evaluate it, both on the audit's held-out rows (never its training data).

    Called from the ``registry.version.ready`` event. Idempotent: the run row
    is locked and its follow-up set once, in the transaction that queues both jobs.
    The evaluation is queued through ``common.evidence.evaluation_request``
    (lifecycle evaluates; governance does not import it).
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
        evaluation_request(
            actor=run.requested_by,
            version=candidate,
            dataset=run.audit.dataset,
            target_column=run.audit.target_column,
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
