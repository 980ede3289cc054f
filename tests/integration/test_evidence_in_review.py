"""Across apps: every evidence producer files into the version's review, judged by
the thresholds of the policy the review froze; monitoring alerts reach webhooks."""

from __future__ import annotations

import io

import pytest
from django.db import transaction

from common.events import publish_event
from governance import fairness_audits, model_cards, reviews, selectors, webhooks
from governance.models import Evidence, FairnessAudit, WebhookDelivery
from governance.tasks import heavy_fairness_audit
from lifecycle import services as lifecycle_services
from lifecycle.models import Evaluation
from lifecycle.tasks import heavy_evaluate
from monitoring import profiles as monitoring_profiles
from registry import services as registry_services
from tests.conftest import create_model, csv_bytes, grant, ready_version
from tests.evidence_support import audit_frame, upload

pytestmark = pytest.mark.django_db

NARRATIVE = {
    "intended_use": "Pre-screening of consumer credit applications.",
    "out_of_scope_use": "Final credit decisions without a human.",
    "limitations": "Trained on generated data.",
    "ethical_considerations": "Sex is audited; it is not a model input.",
}


@pytest.fixture
def version(personas):
    """A high-risk classifier whose training data carries a sensitive attribute."""
    model = create_model(personas.owner, name="credit", risk_tier="high", team=personas.team)
    grant(model, personas.bot, "contributor")
    training = registry_services.dataset_upload(
        actor=personas.bot,
        model=model,
        name="training",
        role="training",
        upload=io.BytesIO(csv_bytes(audit_frame(1500, seed=5))),
        filename="training.csv",
    )
    return ready_version(model, personas.bot, training_dataset=training, target_column="label")


def checklist(version) -> dict[str, dict]:
    review = selectors.review_get_or_draft(version=version)
    return {item["requirement"]: item for item in selectors.review_checklist(review=review)}


def test_each_producer_files_into_the_review_under_the_frozen_policy(personas, version):
    review = reviews.review_submit(actor=personas.bot, version=version)
    policy = review.policy
    assert policy.risk_tier == "high"
    before = checklist(version)
    for kind in policy.required_evidence:
        assert before[f"evidence:{kind}"]["met"] is False

    holdout = upload(version.registered_model, personas.bot, audit_frame())

    evaluation = lifecycle_services.evaluation_start(
        actor=personas.bot, version=version, dataset=holdout, target_column="label"
    )
    heavy_evaluate.run(evaluation.pk)
    evaluation = Evaluation.objects.get(pk=evaluation.pk)
    assert evaluation.status == "succeeded", evaluation.error
    # The evaluation froze the policy's classification floor, not a default.
    assert evaluation.thresholds == policy.thresholds["evaluation_report:classification"]

    audit = fairness_audits.fairness_audit_start(
        actor=personas.bot,
        version=version,
        dataset=holdout,
        target_column="label",
        sensitive_columns=["sex"],
    )
    heavy_fairness_audit.run(audit.pk)
    audit = FairnessAudit.objects.get(pk=audit.pk)
    assert audit.status == "succeeded", audit.error
    assert audit.thresholds["demographic_parity_ratio_min"] == 0.8
    assert audit.min_group_size == policy.thresholds["fairness_audit"]["min_group_size"]

    card = model_cards.model_card_update(actor=personas.owner, version=version, fields=NARRATIVE)
    baseline = monitoring_profiles.reference_profile_ensure(actor=personas.bot, version=version)
    assert baseline is not None

    filed = {e.kind: e for e in Evidence.objects.filter(version=version)}
    assert set(filed) == {
        "evaluation_report",
        "explainability",
        "fairness_audit",
        "model_card",
        "drift_baseline",
    }
    assert filed["evaluation_report"].source == f"lifecycle.evaluation:{evaluation.pk}"
    assert filed["evaluation_report"].passed is evaluation.passed
    assert filed["fairness_audit"].passed is audit.passed
    assert filed["fairness_audit"].source.endswith(f":{audit.pk}")
    assert filed["model_card"].sha256 == card.sha256

    after = checklist(version)
    assert after["evidence:evaluation_report"]["met"] is evaluation.passed
    assert after["evidence:model_card"]["met"] is True
    fairness = after["evidence:fairness_audit"]
    assert fairness["met"] is audit.passed
    if not audit.passed:  # the generated data is biased against one sex
        assert "failed" in fairness["why"]


def test_a_new_audit_after_signing_voids_the_sign_off_it_changed(personas, version):
    from tests.governance.review_support import PASSWORD

    grant(version.registered_model, personas.validator, "approver")
    reviews.review_submit(actor=personas.bot, version=version)
    holdout = upload(version.registered_model, personas.bot, audit_frame())
    first = fairness_audits.fairness_audit_start(
        actor=personas.bot,
        version=version,
        dataset=holdout,
        target_column="label",
        sensitive_columns=["sex"],
    )
    heavy_fairness_audit.run(first.pk)
    signoff = reviews.signoff_create(
        actor=personas.owner,
        version=version,
        decision="approve",
        meaning="reviewed",
        password=PASSWORD,
    )
    assert signoff.valid and "fairness_audit" in signoff.evidence_sha256

    second = fairness_audits.fairness_audit_start(
        actor=personas.bot,
        version=version,
        dataset=holdout,
        target_column="label",
        sensitive_columns=["sex", "age_band"],
    )
    heavy_fairness_audit.run(second.pk)
    signoff.refresh_from_db()
    assert signoff.valid is False
    assert "fairness_audit changed after signing" in signoff.invalidated_reason


def test_monitoring_alerts_are_forwarded_to_subscribed_webhooks(
    personas, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    personas.owner.is_superuser = True
    personas.owner.save()
    alerts = webhooks.webhook_create(
        actor=personas.owner, name="on-call", url="http://127.0.0.1:9/hook", events=["monitoring."]
    )
    webhooks.webhook_create(
        actor=personas.owner,
        name="reviews",
        url="http://127.0.0.1:9/reviews",
        events=["governance.review."],
    )
    payload = {"alert": 7, "model": "credit", "kind": "drift", "status": "open"}
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        publish_event("monitoring.alert.opened", payload)
    deliveries = list(WebhookDelivery.objects.all())
    assert [(d.webhook_id, d.event) for d in deliveries] == [(alerts.pk, "monitoring.alert.opened")]
    assert deliveries[0].payload == {"event": "monitoring.alert.opened", "data": payload}
