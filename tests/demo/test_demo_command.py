"""`manage.py demo` tells the story the README tells, and a second run changes nothing.

One test: the first load trains and audits five versions and simulates two weeks of
traffic (tens of seconds), so every assertion shares it.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from governance.models import FairnessAudit, Review, SignOff
from lifecycle.models import Evaluation, RetrainingRun
from monitoring.models import Alert, Monitor, PredictionBatch
from registry.models import ModelVersion, RegisteredModel

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

    # credit (high risk): v3 in review, signed by owner and validator, waiting for
    # compliance; its fairness audit failed (the data is biased on purpose).
    credit = RegisteredModel.objects.get(name="credit-default")
    in_review = Review.objects.get(version__registered_model=credit, version__number=3)
    assert (in_review.version.number, in_review.state) == (3, "in_review")
    assert {s.role for s in in_review.signoffs.all()} == {"owner", "validator"}
    assert not credit.aliases.filter(name="production").exists()
    assert FairnessAudit.objects.get(version=in_review.version).report["status"] == "failed"

    # Evidence for every ready version; two weeks of traffic per monitor; the
    # credit traffic drifts and opens an alert, the diabetes traffic does not.
    # (and diabetes' SGD version and the two retrained candidates below).
    assert Evaluation.objects.filter(status="succeeded").count() == 5 + 3
    assert Alert.objects.filter(monitor__registered_model=credit).exists()
    assert not Alert.objects.filter(monitor__registered_model=diabetes).exists()
    assert PredictionBatch.objects.count() == 2 * 14

    # Retraining: the credit drift alert retrained credit by itself (refit on the
    # training dataset and a week of labelled production rows) and its candidate is
    # in review; diabetes' SGD version (partial_fit) learned its traffic online and
    # the production champion beat it; diabetes retrains weekly on beat's schedule.
    alerted = RetrainingRun.objects.get(registered_model=credit)
    assert (alerted.trigger, alerted.strategy, alerted.outcome) == (
        "alert",
        "refit",
        "candidate_submitted",
    )
    assert alerted.alert.monitor.registered_model == credit and alerted.version.parent.number == 3
    assert Review.objects.get(version=alerted.version).state == "in_review"
    assert alerted.data_record["train"]["rows"]["production"] > 0
    online = RetrainingRun.objects.get(registered_model=diabetes)
    assert (online.strategy, online.outcome) == ("online", "rejected_by_champion")
    assert online.parent.estimator.endswith("Pipeline") and online.champion.number == 2
    assert diabetes.retraining_policy.periodic_task.enabled

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
