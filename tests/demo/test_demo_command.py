"""`manage.py demo` tells the story the README tells, and a second run changes nothing.

One test: the first load trains, evaluates and audits five versions (one of them a
fairness mitigation) and simulates two weeks of traffic (tens of seconds), so every
assertion shares it.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from governance import reviews, selectors
from governance.models import FairnessAudit, Review, SignOff
from lifecycle.models import Environment, Evaluation, RetrainingRun
from monitoring.models import Alert, Monitor, PredictionBatch
from registry.models import ModelVersion, RegisteredModel
from tests.lifecycle.deploy_support import deploy

pytestmark = pytest.mark.django_db

PERSONAS = ["owner", "validator", "compliance", "auditor", "pipeline-bot", "outsider"]


def demo(*args: str) -> str:
    out = io.StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    found = {}
    for name in PERSONAS:
        match = re.search(rf"^  {re.escape(name)}\s+(\S+)\s", output, re.MULTILINE)
        if match and not match.group(1).startswith("("):
            found[name] = match.group(1)
    return found


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            RegisteredModel,
            ModelVersion,
            Evaluation,
            FairnessAudit,
            Review,
            SignOff,
            Monitor,
            PredictionBatch,
            Alert,
            RetrainingRun,
        )
    }


def test_the_demo_loads_the_readme_story_once_and_prints_passwords_only_when_set():
    first = demo()

    passwords = printed_passwords(first)
    assert set(passwords) == set(PERSONAS)
    owner = User.objects.get(username="owner")
    assert owner.check_password(passwords["owner"])

    # diabetes (medium risk): v2 approved by owner and validator, in production.
    diabetes = RegisteredModel.objects.get(name="diabetes-progression")
    assert diabetes.risk_tier == "medium"
    approved = Review.objects.get(version__registered_model=diabetes)
    assert (approved.version.number, approved.state) == (2, "approved")
    assert diabetes.aliases.get(name="production").version.number == 2
    assert {s.role for s in approved.signoffs.all()} == {"owner", "validator"}

    # credit (high risk), end to end. v1 (a scorecard) passes every gate: evaluation,
    # fairness audit, model card, three sign-offs; it is in production.
    credit = RegisteredModel.objects.get(name="credit-default")
    v1, v2, v3 = ModelVersion.objects.filter(registered_model=credit).order_by("number")[:3]
    assert credit.aliases.get(name="production").version == v1
    first = Review.objects.get(version=v1)
    assert first.state == "approved"
    assert all(item["met"] for item in selectors.review_checklist(review=first))
    assert {s.role for s in first.signoffs.all()} == {"owner", "validator", "compliance"}
    assert FairnessAudit.objects.get(version=v1).passed is True

    # v2 scores better but fails its fairness audit, and the rejection says why.
    audit = FairnessAudit.objects.get(version=v2)
    assert audit.report["status"] == "failed"
    assert v2.metrics["roc_auc"] > v1.metrics["roc_auc"]
    rejected = Review.objects.get(version=v2)
    assert rejected.state == "rejected"
    assert "fairness audit failed" in rejected.transitions.last().reason
    assert "demographic_parity_ratio_min" in rejected.transitions.last().reason

    # v3 mitigates v2's failed audit: a retraining run (fairness_mitigation) requested
    # by the owner, authored by the run, fitted on the training data, evaluated and
    # audited (passed) on the held-out rows, reading sex and age_band at prediction
    # time. Owner and validator signed; only the compliance officer's sign-off,
    # acknowledging that use, is missing.
    run = RetrainingRun.objects.get(registered_model=credit, strategy="fairness_mitigation")
    assert run.version == v3 and v3.parent == v2 == run.parent
    assert (run.trigger, run.requested_by, run.fairness_audit) == ("request", owner, audit)
    assert (v3.created_by, v3.requested_by) == (None, owner)
    assert v3.training_dataset.name == "applications-2025" and v3.metrics["roc_auc"] > 0.6
    assert run.evaluation_dataset.name == "applications-holdout"
    follow_up = run.follow_up_audit
    assert follow_up.dataset.name == "applications-holdout" and follow_up.passed is True
    evaluation = Evaluation.objects.get(version=v3)
    assert evaluation.dataset.name == "applications-holdout" and evaluation.passed is True
    assert evaluation.champion == v1
    assert selectors.sensitive_inputs(version=v3) == ["sex", "age_band"]
    pending = Review.objects.get(version=v3)
    assert pending.state == "in_review"
    assert {s.role for s in pending.signoffs.all()} == {"owner", "validator"}
    missing = [i["requirement"] for i in selectors.review_checklist(review=pending) if not i["met"]]
    assert missing == ["signoff:compliance", "acknowledgement:sensitive_inputs"]
    compliance = User.objects.get(username="compliance")
    # v4, the candidate that credit's drift alert retrained by itself (below), waits
    # in review too: for every role, the owner's included (the owner only requested it).
    waiting = [r.version.number for r in selectors.waiting_for(user=compliance)]
    assert sorted(waiting) == [3, 4]
    assert [r.version.number for r in selectors.waiting_for(user=owner)] == [4]

    # Evidence for every ready version; two weeks of traffic per monitor; the
    # credit traffic drifts and opens an alert, the diabetes traffic does not.
    # (5, and diabetes' SGD version and the two retrained candidates below).
    assert Evaluation.objects.filter(status="succeeded").count() == 5 + 3
    assert FairnessAudit.objects.filter(status="succeeded").count() == 3 + 1  # + v4, retrained
    assert Alert.objects.filter(monitor__registered_model=credit).exists()
    assert not Alert.objects.filter(monitor__registered_model=diabetes).exists()
    # The drift costs credit performance: judged against v2's first week in production
    # (the default baseline), not its holdout score, the drop opens a performance alert
    # on the day the drift starts. The monitor follows credit@staging (v2).
    watching = Monitor.objects.get(registered_model=credit)
    assert (watching.alias, watching.version, watching.baseline) == ("staging", v2, "reference")
    dropped = Alert.objects.get(monitor=watching, kind="performance")
    assert dropped.first_run.version == v2
    assert dropped.first_run.window_start == dropped.first_run.monitor.runs.earliest(
        "window_start"
    ).window_start + timedelta(days=9)
    assert "first 7 d of v2 in production" in dropped.message
    assert dropped.details["drops"] and all(d > 0.05 for d in dropped.details["drops"].values())
    assert PredictionBatch.objects.count() == 2 * 14

    # Retraining: the credit drift alert retrained credit by itself (refit on the
    # training dataset and a week of labelled production rows) and its candidate is
    # in review; diabetes' SGD version (partial_fit) learned its traffic online and
    # the production champion beat it; diabetes retrains weekly on beat's schedule.
    alerted = RetrainingRun.objects.get(registered_model=credit, trigger="alert")
    assert (alerted.trigger, alerted.strategy, alerted.outcome) == (
        "alert",
        "refit",
        "candidate_submitted",
    )
    # The parent is the version the alerting monitor watches (v2, which serves the traffic).
    assert alerted.alert.monitor.registered_model == credit
    assert alerted.version.parent == alerted.alert.monitor.version == v2
    assert Review.objects.get(version=alerted.version).state == "in_review"
    assert alerted.data_record["train"]["rows"]["production"] > 0
    online = RetrainingRun.objects.get(registered_model=diabetes)
    assert (online.strategy, online.outcome) == ("online", "rejected_by_champion")
    assert online.parent.estimator.endswith("Pipeline") and online.champion.number == 2
    assert diabetes.retraining_policy.periodic_task.enabled

    # The served versions' predictions are explained on their pages (a worker job).
    from lifecycle.models import Explanation

    for served in (credit, diabetes):
        job = Explanation.objects.get(version=served.aliases.get(name="production").version)
        assert job.status == "succeeded", job.error
        assert len(job.result["rows"]) == 10
        if job.result["method"] == "linear":
            assert job.result["additivity_gap"] < 1e-6

    # A second run keeps what exists and prints no password.
    before = counts()
    second = demo()
    assert counts() == before
    assert printed_passwords(second) == {}
    assert "manage.py demo --reset-passwords" in second

    # --reset-passwords prints new ones, which are the ones that now work.
    reset = printed_passwords(demo("--reset-passwords"))
    assert set(reset) == set(PERSONAS)
    owner.refresh_from_db()
    assert owner.check_password(reset["owner"])
    assert not owner.check_password(passwords["owner"])

    # The mitigation is approvable: the compliance officer's acknowledged sign-off
    # approves it, and it can be deployed.
    compliance.refresh_from_db()
    reviews.signoff_create(
        actor=compliance,
        version=v3,
        password=reset["compliance"],
        decision="approve",
        meaning="approved_for_deployment",
        acknowledge_sensitive_inputs=True,
    )
    assert Review.objects.get(version=v3).state == "approved"
    production = Environment.objects.get(registered_model=credit, name="production")
    assert deploy(production, v3, owner).state == "succeeded"
    assert credit.aliases.get(name="production").version == v3
