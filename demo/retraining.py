"""Demo state for retraining, loaded by `manage.py demo` (idempotent).

``policies`` runs before the monitoring demo: credit-default gets an alert-triggered
refit policy (auto-submit, a fairness audit by sex), so the drift alert that the
monitoring demo opens on day 9 starts a retraining run by itself (the
``monitoring.retraining.requested`` event). diabetes-progression gets a weekly
scheduled policy (a django-celery-beat PeriodicTask, visible in the admin) and a
version whose estimator supports ``partial_fit`` (SGDRegressor).

``load`` runs after it: the queued credit run, and an online run of the SGD version
on diabetes' production rows that its owner asked for, are trained in-process with
their follow-ups (validation, review, evaluation, fairness audit), so the demo shows
them before any worker starts; the queued messages then find the jobs done.
"""

from __future__ import annotations

import io
from typing import Any

from django.db import transaction

from common.jobs import job_claim
from common.storage import cached_blob_path
from demo import samples
from governance.models import FairnessAudit
from governance.tasks import heavy_fairness_audit
from lifecycle import retraining
from lifecycle.models import Evaluation, RetrainingPolicy, RetrainingRun
from lifecycle.tasks import heavy_evaluate, heavy_retrain
from registry import services as registry_services
from registry.models import Dataset, ModelVersion, RegistrationJob
from registry.tables import read_table

SGD_DESCRIPTION = "SGD regressor (learns online with partial_fit)"


def policies(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    """Retraining policies, set before the monitoring demo opens its alerts."""
    owner = users["owner"]
    credit, diabetes = models["credit"], models["diabetes"]
    if not RetrainingPolicy.objects.filter(registered_model=credit).exists():
        retraining.retraining_policy_set(
            actor=owner,
            model=credit,
            strategy="refit",
            on_alert=True,
            production_window_hours=3 * 24,  # the drifted days
            max_rows=9000,
            # No cooldown: the demo compresses two weeks into a minute, and the owner's
            # fairness mitigation (a retraining run too) ran moments before the alert.
            cooldown_minutes=0,
            daily_budget=3,
            auto_submit=True,
            primary_metric="roc_auc",
            tolerance=0.01,
            sensitive_columns=["sex"],
        )
    if not RetrainingPolicy.objects.filter(registered_model=diabetes).exists():
        retraining.retraining_policy_set(
            actor=owner,
            model=diabetes,
            strategy="refit",
            schedule="0 4 * * 1",
            auto_submit=False,
            primary_metric="rmse",
            tolerance=2.0,
        )
    _sgd_version(users, diabetes)
    command.stdout.write("  retraining: policies on credit-default (alerts) and diabetes (weekly)")


def _sgd_version(users: dict[str, Any], model: Any) -> ModelVersion:
    existing = model.versions.filter(description=SGD_DESCRIPTION).first()
    if existing is not None:
        return existing
    import skops.io as sio
    from sklearn.linear_model import SGDRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    dataset = Dataset.objects.get(registered_model=model, name="diabetes-train")
    with cached_blob_path(dataset.storage_key) as path:
        train = read_table(path)
    target = samples.DIABETES_TARGET
    features = [c for c in train.columns if c != target]
    fitted = Pipeline([("scale", StandardScaler()), ("sgd", SGDRegressor(random_state=0))]).fit(
        train[features], train[target]
    )
    version = registry_services.model_version_register(
        actor=users["pipeline-bot"],
        model=model,
        artifact=io.BytesIO(sio.dumps(fitted)),
        training_dataset=dataset,
        target_column=target,
        description=SGD_DESCRIPTION,
        tags=["demo", "online"],
    )
    _validate(version)
    version = ModelVersion.objects.get(pk=version.pk)
    # Its evaluation, as the demo gives every version (the command's evidence step ran
    # before this version existed).
    from lifecycle.services import evaluation_start

    holdout = Dataset.objects.get(registered_model=model, name="diabetes-holdout")
    job = evaluation_start(
        actor=users["pipeline-bot"], version=version, dataset=holdout, target_column=target
    )
    heavy_evaluate.run(job.pk)
    return version


def _validate(version: ModelVersion) -> None:
    with transaction.atomic():
        job = job_claim(RegistrationJob, version.registration_job.pk)
    if job is not None:
        registry_services.model_version_validate(job=job)


def _run_in_process(run: RetrainingRun) -> RetrainingRun:
    """The worker's jobs, here: the run, the candidate's validation, its evidence."""
    heavy_retrain.run(run.pk)
    run = RetrainingRun.objects.select_related("version").get(pk=run.pk)
    if run.version is None:
        return run
    _validate(run.version)  # its ready event starts the follow-up (review, evidence)
    retraining.retraining_follow_up(version_id=run.version_id)  # no-op if the event did it
    for evaluation in Evaluation.objects.filter(version=run.version, status="queued"):
        heavy_evaluate.run(evaluation.pk)
    for audit in FairnessAudit.objects.filter(version=run.version, status="queued"):
        heavy_fairness_audit.run(audit.pk)
    return RetrainingRun.objects.get(pk=run.pk)


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    """Train the runs the demo's triggers queued, and one online run of diabetes."""
    credit, diabetes = models["credit"], models["diabetes"]
    retraining.retraining_signals_consume()  # in case the alert's event was missed
    for run in RetrainingRun.objects.filter(
        registered_model__in=[credit, diabetes], status="queued"
    ).order_by("pk"):
        run = _run_in_process(run)
        command.stdout.write(f"  retraining: {run}: {run.get_outcome_display().lower()}")
    if not RetrainingRun.objects.filter(registered_model=diabetes, strategy="online").exists():
        sgd = _sgd_version(users, diabetes)
        run = retraining.retraining_run_request(
            actor=users["owner"],
            model=diabetes,
            reason="Learn this fortnight's labelled traffic online (demo).",
            strategy="online",
            params={"chunk_size": 200},
            parent=sgd,
            production_window_hours=7 * 24,
            force=True,
        )
        run = _run_in_process(run)
        command.stdout.write(f"  retraining: {run}: {run.get_outcome_display().lower()}")
