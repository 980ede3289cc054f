"""Governance's mitigation runs become retraining runs (strategy ``fairness_mitigation``).

Every candidate version now comes through one door, ``RetrainingRun``; this carries
the history of ``governance.MitigationRun`` over before governance drops that table
(``governance.0009`` depends on this migration):

- one run per mitigation, requested by the same person, from the same audit, with
  the same method, constraint and seed (``random_state``), parent, candidate,
  follow-up audit and evaluation, timestamps, attempts, log and error;
- data as the mitigation used it: the parent's training dataset, judged on the
  audit's rows (``evaluation_dataset``), no production rows, no hold-out;
- ``auto_submit`` off (a mitigation never submitted its candidate by itself);
- a mitigation still queued or running is carried over as failed, saying why
  (its task is gone with the table): the owner starts it again;
- a candidate that is ready but whose follow-up (re-audit, evaluation) never ran
  is left ``awaiting_validation`` with no ``followed_up_at``, so lifecycle's
  follow-up sweep runs it; a candidate still being validated likewise.

The audit trail keeps the mitigation's own events (``governance.mitigation.*``,
object ``governance.mitigationrun:<id>``); each run's reason and log name the
mitigation it was, so the two can be joined.

It also removes beat's ``mitigation-follow-ups`` entry, whose task is gone.
"""

from django.db import migrations
from django.utils import timezone

INTERRUPTED = (
    "Interrupted: governance's mitigation jobs became retraining runs (strategy "
    "fairness_mitigation) before this one ran. Start the mitigation again."
)


def _outcome(mitigation, candidate):
    """(outcome, reason, followed up) for a carried-over mitigation."""
    if candidate is None:
        return "pending", "", True
    label = f"v{candidate.number}"
    if candidate.status == "failed":
        reason = f"The registry refused the candidate: {candidate.status_reason}"
        return "version_failed", reason, True
    if candidate.status == "pending" or mitigation.follow_up_id is None:
        return "awaiting_validation", "", False
    return "candidate_ready", f"{label} is ready; a mitigation is not submitted by itself.", True


def carry_over(apps, schema_editor):
    MitigationRun = apps.get_model("governance", "MitigationRun")
    RetrainingRun = apps.get_model("lifecycle", "RetrainingRun")
    Evaluation = apps.get_model("lifecycle", "Evaluation")
    mitigations = MitigationRun.objects.select_related(
        "version", "version__registered_model", "version__training_dataset", "audit", "candidate"
    ).order_by("queued_at", "pk")
    for m in mitigations:
        version, audit, candidate = m.version, m.audit, m.candidate
        status, error = m.status, m.error
        finished_at = m.finished_at
        if status in ("queued", "running"):
            status, error = "failed", (f"{error}\n{INTERRUPTED}" if error else INTERRUPTED)
            finished_at = timezone.now()
        outcome, outcome_reason, followed = _outcome(m, candidate)
        sensitive = list(audit.sensitive_columns or [])
        features = [c["name"] for c in (version.signature or {}).get("inputs", [])]
        evaluation = (
            Evaluation.objects.filter(version=candidate, dataset_id=audit.dataset_id)
            .order_by("queued_at", "pk")
            .first()
            if candidate is not None
            else None
        )
        note = f"Carried over from governance's mitigation #{m.pk} of fairness audit #{audit.pk}."
        run = RetrainingRun.objects.create(
            registered_model=version.registered_model,
            trigger="request",
            reason=note,
            requested_by_id=m.requested_by_id,
            fairness_audit=audit,
            strategy="fairness_mitigation",
            params={"method": m.method, "constraint": m.constraint, "sensitive_columns": sensitive},
            seed=m.random_state,
            parent=version,
            training_dataset=version.training_dataset,
            evaluation_dataset_id=audit.dataset_id,
            target_column=audit.target_column or version.target_column,
            features=list(dict.fromkeys([*features, *sensitive])),
            production_window_hours=0,
            window_end=m.queued_at,
            holdout_fraction=0.0,
            primary_metric="roc_auc",
            auto_submit=False,
            sensitive_columns=sensitive,
            train_dataset=candidate.training_dataset if candidate is not None else None,
            version=candidate,
            outcome=outcome,
            outcome_reason=outcome_reason,
            followed_up_at=(m.finished_at or m.queued_at) if followed and candidate else None,
            evaluation=evaluation,
            follow_up_audit_id=m.follow_up_id,
            status=status,
            attempts=m.attempts,
            queued_at=m.queued_at,
            started_at=m.started_at,
            heartbeat_at=m.heartbeat_at,
            finished_at=finished_at,
            error=error,
            log=f"{note}\n{m.log}".strip(),
        )
        assert run.pk


def drop_the_old_sweep(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="governance.tasks.mitigation_follow_up_sweep").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("governance", "0008_fairness_audit_requested_by_optional"),
        ("lifecycle", "0004_retraining"),
    ]

    operations = [
        migrations.RunPython(carry_over, migrations.RunPython.noop),
        migrations.RunPython(drop_the_old_sweep, migrations.RunPython.noop),
    ]
