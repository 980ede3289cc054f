"""The version page in a real browser: per-prediction explanations asked for and shown,
and permutation importances drawn with their sign."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lifecycle import services
from lifecycle.models import Evaluation, Explanation
from lifecycle.tasks import heavy_evaluate, heavy_explain
from tests.conftest import log_in, ready_version, shot, training_frame
from tests.evidence_support import upload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def evaluated(model, personas):
    version = ready_version(model, personas.bot)
    dataset = upload(model, personas.bot, training_frame(200, seed=4))
    job = services.evaluation_start(
        actor=personas.bot, version=version, dataset=dataset, target_column="label"
    )
    heavy_evaluate.run(job.pk)
    return version, Evaluation.objects.get(pk=job.pk)


def test_a_validator_asks_for_explanations_and_reads_each_feature_s_contribution(
    page, model, personas
):
    evaluated(model, personas)
    log_in(page, "pipeline-bot")
    page.goto("/models/credit/versions/1/")
    panel = page.locator("#panel-explanations")
    expect(panel.locator("#explanations-none")).to_be_visible()
    panel.locator("input[name=sample_size]").fill("4")
    panel.locator("#explain-form button").click()
    expect(panel).to_contain_text("Explaining 4 predictions")
    job = Explanation.objects.get()
    assert job.sample_size == 4 and job.status == "queued"

    heavy_explain.run(job.pk)  # the worker's half; the panel polls until it is done
    expect(panel.locator("#explanations-method")).to_contain_text(
        "4 rows from the evaluation dataset", timeout=20000
    )
    expect(panel.locator("#explanations-method")).to_contain_text("linear contributions")
    expect(panel.locator("details.explanation")).to_have_count(4)
    first = panel.locator("details.explanation").first
    expect(first.locator("table.contributions tbody tr")).to_have_count(3)  # age, income, score
    job.refresh_from_db()
    row = job.result["rows"][0]
    assert row["base"] + row["total"] == pytest.approx(row["score"])
    shown = first.locator("summary").inner_text()
    assert f"{row['score']:.4f}" in shown
    shot(page, "explanations-panel")


def test_a_negative_permutation_importance_is_drawn_to_the_left_of_zero(page, model, personas):
    _version, job = evaluated(model, personas)
    importance = dict(job.importance)
    importance["features"] = [
        {"feature": "score", "mean": 0.2, "std": 0.01},
        {"feature": "income", "mean": 0.0, "std": 0.0},
        {"feature": "age", "mean": -0.05, "std": 0.01},
    ]
    Evaluation.objects.filter(pk=job.pk).update(importance=importance)

    log_in(page, "pipeline-bot")
    page.goto("/models/credit/versions/1/")
    page.click("#importance-details > summary")  # the table is folded until opened
    rows = page.locator("#importance tbody tr")
    age = rows.filter(has_text="age")
    score = rows.filter(has_text="score")
    expect(age.locator(".bar.neg")).to_have_count(1)
    expect(score.locator(".bar.neg")).to_have_count(0)
    axis = age.locator(".axis").bounding_box()
    negative = age.locator(".bar").bounding_box()
    positive = score.locator(".bar").bounding_box()
    assert negative["x"] + negative["width"] <= axis["x"] + 1  # ends at zero, drawn left
    assert positive["x"] >= axis["x"] - 1  # starts at zero, drawn right
    assert negative["width"] == pytest.approx(positive["width"] * 0.25, rel=0.1)
