"""A failed audit mitigated from the version page in a real browser, and the high-risk
candidate approved: the owner who asked for it (a retraining run) attests as owner,
the validator signs, and the compliance officer, told in plain words that it reads
sex at prediction time, approves by acknowledging it. A validator who authored a
version is told the one reason they may not sign it."""

from __future__ import annotations

import io

import pytest
import skops.io as sio
from playwright.sync_api import expect
from sklearn.linear_model import LogisticRegression

from demo import samples
from governance import fairness_audits, model_cards, reviews
from governance.models import FairnessAudit, Review, SignOff
from governance.tasks import heavy_fairness_audit
from lifecycle import retraining
from lifecycle.models import Evaluation, RetrainingRun
from lifecycle.tasks import heavy_evaluate, heavy_retrain
from registry import services as registry_services
from tests.conftest import create_model, csv_bytes, grant, log_in, ready_version, shot, validate
from tests.governance.review_support import PASSWORD, high_risk_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CANDIDATE_REVIEW = "/models/credit/versions/2/review/"
FEATURES, TARGET = samples.CREDIT_FEATURES, samples.CREDIT_TARGET
NARRATIVE = {
    "intended_use": "Rank applications for manual review.",
    "out_of_scope_use": "Automated rejection.",
    "limitations": "Synthetic data.",
    "ethical_considerations": "Reads sex at prediction time.",
}


def log_out(page) -> None:
    page.context.clear_cookies()


def sign_in_page(page, *, meaning: str, comment: str, acknowledge: bool | None = None) -> None:
    form = page.locator("#signoff-form")
    form.locator("select[name=decision]").select_option("approve")
    form.locator("select[name=meaning]").select_option(meaning)
    form.locator("textarea[name=comment]").fill(comment)
    if acknowledge is not None:
        form.locator("input[name=acknowledge_sensitive_inputs]").set_checked(acknowledge)
    form.locator("input[name=password]").fill(PASSWORD)
    form.locator("button[type=submit]").click()


def dataset(model, actor, frame, name, role):
    return registry_services.dataset_upload(
        actor=actor,
        model=model,
        name=name,
        role=role,
        upload=io.BytesIO(csv_bytes(frame)),
        filename=f"{name}.csv",
    )


def failed_audit(personas):
    """credit v1 (by the bot, trained on the demo's biased loan data) fails its audit by
    sex on held-out rows."""
    model = create_model(personas.owner, name="credit", risk_tier="high", team=personas.team)
    grant(model, personas.bot, "contributor")
    grant(model, personas.validator, "approver")
    grant(model, personas.compliance, "approver")
    train_frame = samples.credit_data(3000, seed=1)
    fitted = samples.credit_pipeline(LogisticRegression(max_iter=500)).fit(
        train_frame[FEATURES], train_frame[TARGET]
    )
    train = dataset(model, personas.bot, train_frame, "applications", "training")
    holdout = dataset(
        model, personas.bot, samples.credit_data(3000, seed=2), "holdout", "evaluation"
    )
    v1 = ready_version(
        model,
        personas.bot,
        artifact=sio.dumps(fitted),
        signature_inputs=None,
        training_dataset=train,
        target_column=TARGET,
    )
    audit = fairness_audits.fairness_audit_start(
        actor=personas.bot,
        version=v1,
        dataset=holdout,
        target_column=TARGET,
        sensitive_columns=["sex"],
    )
    heavy_fairness_audit.run(audit.pk)
    audit.refresh_from_db()
    assert audit.passed is False
    return audit


def mitigated_candidate(personas):
    """The owner's mitigation of v1's failed audit makes v2: evaluated, audited, carded."""
    audit = failed_audit(personas)
    run = retraining.fairness_mitigation_request(actor=personas.owner, audit=audit)
    return finish(run, personas)


def finish(run, personas):
    """The worker's jobs in-process: the run, the validation, the run's follow-up
    (the "ready" event's: review per the policy, evaluation, re-audit), the evidence."""
    heavy_retrain.run(run.pk)
    candidate = validate(RetrainingRun.objects.get(pk=run.pk).version)
    retraining.retraining_follow_up(version_id=candidate.pk)
    for follow_up in FairnessAudit.objects.filter(version=candidate, status="queued"):
        heavy_fairness_audit.run(follow_up.pk)
    for evaluation in Evaluation.objects.filter(version=candidate, status="queued"):
        heavy_evaluate.run(evaluation.pk)
    model_cards.model_card_update(actor=personas.owner, version=candidate, fields=NARRATIVE)
    return candidate


def test_the_owner_starts_a_mitigation_from_the_failed_audit_and_sees_its_candidate(page, personas):
    audit = failed_audit(personas)
    log_in(page, "owner")
    page.goto("/models/credit/versions/1/")
    panel = page.locator("#panel-mitigation")
    expect(panel.locator("#mitigation-audit")).to_contain_text(f"Fairness audit #{audit.pk}")
    panel.locator("select[name=constraint]").select_option("demographic_parity")
    panel.locator("#mitigation-form button[type=submit]").click()
    expect(panel).to_contain_text("queued (fairness mitigation)")
    run = RetrainingRun.objects.get()
    assert (run.strategy, run.fairness_audit_id, run.requested_by) == (
        "fairness_mitigation",
        audit.pk,
        personas.owner,
    )
    expect(panel.locator(f"#mitigation-run-{run.pk}")).to_contain_text("Queued")
    shot(page, "mitigation-0-queued")
    finish(run, personas)  # the panel polls while the run and its evidence are busy
    expect(panel.locator(f"#mitigation-run-{run.pk}")).to_contain_text("v2", timeout=20000)
    expect(panel.locator(f"#mitigation-run-{run.pk}")).to_contain_text("(passed)")
    panel.locator(f"#mitigation-run-{run.pk} a", has_text="Retraining run").click()
    expect(page.locator("main")).to_contain_text("Fairness mitigation")


def test_the_owner_who_requested_a_mitigation_signs_it_and_compliance_acknowledges_sex(
    page, personas
):
    candidate = mitigated_candidate(personas)
    assert candidate.created_by is None and candidate.requested_by == personas.owner
    assert FairnessAudit.objects.get(version=candidate).passed is True
    assert Evaluation.objects.get(version=candidate).passed is True
    if not Review.objects.filter(version=candidate).exists():  # unless the run submitted it
        reviews.review_submit(actor=personas.owner, version=candidate)

    # The owner finds the candidate waiting for them and signs it as owner.
    log_in(page, "owner")
    expect(page.locator("#section-waiting")).to_contain_text("credit v2")
    page.locator("#section-waiting a", has_text="credit v2").click()
    expect(page.locator("h1")).to_contain_text("Review of credit v2")
    expect(page.locator("main")).to_contain_text("requested by owner")
    sign_in_page(page, meaning="reviewed", comment="Mitigation I asked for", acknowledge=False)
    expect(page.locator("#signoffs")).to_contain_text("Mitigation I asked for")
    shot(page, "mitigation-1-owner-signed")
    log_out(page)

    log_in(page, "validator")
    page.goto(CANDIDATE_REVIEW)
    sign_in_page(page, meaning="validated", comment="Thresholds reproduced")
    expect(page.locator("#signoffs")).to_contain_text("Thresholds reproduced")
    log_out(page)

    # The compliance officer is told, in plain words, that it reads sex to decide.
    log_in(page, "compliance")
    page.goto("/models/credit/versions/2/")
    expect(page.locator("#sensitive-inputs")).to_contain_text(
        "v2 uses the sensitive attribute sex as an input at prediction time"
    )
    page.goto(CANDIDATE_REVIEW)
    notice = page.locator("#sensitive-inputs")
    expect(notice).to_contain_text("Uses sensitive attributes at prediction time")
    expect(notice).to_contain_text("compliance officer acknowledges it when signing")
    expect(page.locator("table.checklist")).to_contain_text(
        "the compliance officer has not acknowledged sex yet"
    )
    shot(page, "mitigation-2-compliance-told")
    sign_in_page(page, meaning="approved_for_deployment", comment="ok", acknowledge=False)
    expect(page.locator("#review-errors")).to_contain_text("by acknowledging that")
    assert not SignOff.objects.filter(role="compliance").exists()
    sign_in_page(
        page, meaning="approved_for_deployment", comment="Lawful use confirmed", acknowledge=True
    )
    expect(page.locator("#review-state")).to_contain_text("Approved")
    expect(page.locator("table.checklist tr.missing")).to_have_count(0)
    shot(page, "mitigation-3-approved")

    assert Review.objects.get(version=candidate).state == "approved"
    signed = SignOff.objects.get(role="compliance")
    assert signed.acknowledged_sensitive_inputs == ["sex"]
    assert SignOff.objects.get(role="owner").signer == personas.owner


def test_a_validator_who_authored_a_version_is_given_the_one_reason_they_may_not_sign(
    page, personas
):
    version = high_risk_version(personas)
    grant(version.registered_model, personas.validator, "contributor")
    authored = ready_version(version.registered_model, personas.validator)
    reviews.review_submit(actor=personas.owner, version=authored)

    log_in(page, "validator")
    expect(page.locator("#section-waiting")).not_to_contain_text("credit v2")
    page.goto("/models/credit/versions/2/review/")
    expect(page.locator("#signoff-form")).to_have_count(0)
    expect(page.locator("#signing-refusal")).to_have_text(
        "You hold validator but may not sign: You registered this version, so you may not "
        "sign it as the independent validator: that role checks the author's work and must "
        "be someone else."
    )
