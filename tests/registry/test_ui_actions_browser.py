"""Registry actions in a real browser: an alias moved from the model page (and a
protected one refused with the API's message), failed uploads collapsed apart, and the
warning on a version whose file was uploaded before."""

from __future__ import annotations

import pickle

import pytest
from playwright.sync_api import expect
from sklearn.linear_model import LogisticRegression

from registry import services
from registry.models import Alias
from tests.conftest import (
    classifier_bytes,
    client_for,
    log_in,
    ready_version,
    register,
    shot,
    validate,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_contributor_moves_staging_and_is_refused_production(page, model, personas):
    ready_version(model, personas.bot)
    ready_version(model, personas.bot, artifact=classifier_bytes(seed=1))
    services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
    log_in(page, "pipeline-bot")
    page.goto("/models/credit/")
    form = page.locator("#alias-move")
    form.locator("input[name=alias]").fill("staging")
    form.locator("select[name=version]").select_option("2")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/models/credit/#aliases")
    expect(page.locator(".messages")).to_contain_text("credit@staging now points at v2.")
    expect(page.locator("#aliases tbody")).to_contain_text("v2")
    assert Alias.objects.get(name="staging").version.number == 2

    api = client_for(personas.bot).put(
        "/api/v1/models/credit/aliases/production", {"version": 2}, format="json"
    )
    assert api.status_code == 403
    form.locator("input[name=alias]").fill("production")
    form.locator("select[name=version]").select_option("2")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/models/credit/#aliases")
    expect(page.locator(".msg-error")).to_have_text(api.json()["error"]["message"])
    assert not Alias.objects.filter(name="production").exists()
    shot(page, "alias-move-refused")


def test_a_viewer_has_no_alias_form(page, model, personas):
    ready_version(model, personas.bot)
    log_in(page, "viewer")
    page.goto("/models/credit/")
    expect(page.locator("#aliases")).to_be_visible()
    expect(page.locator("#alias-move")).to_have_count(0)


def test_failed_uploads_are_collapsed_and_a_repeated_file_is_flagged(page, model, personas):
    ready_version(model, personas.bot)
    failed = validate(register(model, personas.bot, artifact=pickle.dumps(LogisticRegression())))
    assert failed.status == "failed"
    ready_version(model, personas.bot)  # v3: the same file as v1
    log_in(page, "owner")
    page.goto("/models/credit/")
    failed_list = page.locator("#failed-versions")
    expect(failed_list).to_contain_text("1 failed upload")
    expect(failed_list.locator("table")).to_be_hidden()  # collapsed
    expect(page.locator("#versions > table")).not_to_contain_text("v2")
    failed_list.locator("summary").click()
    expect(failed_list.locator("table")).to_be_visible()
    expect(failed_list.locator("table")).to_contain_text("pickle")
    shot(page, "failed-versions-open")
    page.goto("/models/credit/versions/3/")
    warning = page.locator("#version-warning-duplicate_artifact")
    expect(warning).to_contain_text("byte-identical to v1 (ready)")
    warning.locator("a:text('v1')").click()
    page.wait_for_url("**/models/credit/versions/1/")
