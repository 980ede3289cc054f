"""The auditor's admin: read-only, exports a selection, no full count on the audit table."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from common.models import AuditEvent
from governance import reviews
from governance.models import ApprovalPolicy, SignOff
from tests.governance.review_support import high_risk_version, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor_client(personas):
    client = Client()
    client.force_login(personas.auditor)
    return client


def test_auditors_read_every_governance_list_and_change_nothing(personas, auditor_client):
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    sign(personas.validator, version)
    for path in (
        "/admin/governance/review/",
        "/admin/governance/signoff/",
        "/admin/governance/approvalpolicy/",
        "/admin/governance/evidence/",
        "/admin/registry/registeredmodel/",
        "/admin/registry/modelversion/",
        "/admin/common/auditevent/?action=governance.signoff.created&q=validator",
    ):
        assert auditor_client.get(path).status_code == 200, path
    policy = ApprovalPolicy.objects.get(risk_tier="high", version=1)
    page = auditor_client.get(f"/admin/governance/approvalpolicy/{policy.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    response = auditor_client.post(
        f"/admin/governance/signoff/{SignOff.objects.get().pk}/change/", {"comment": "x"}
    )
    assert response.status_code == 403
    assert SignOff.objects.get().comment == ""


def test_auditors_export_a_selection_as_csv_and_json(personas, auditor_client):
    high_risk_version(personas)
    chosen = list(AuditEvent.objects.order_by("seq").values_list("pk", flat=True)[:3])
    body = {"action": "export_csv", "_selected_action": chosen}
    response = auditor_client.post("/admin/common/auditevent/", body)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(r["id"]) for r in sorted(rows, key=lambda r: int(r["seq"]))] == chosen
    assert all(len(r["hash"]) == 64 for r in rows)
    response = auditor_client.post("/admin/common/auditevent/", {**body, "action": "export_json"})
    assert {e["id"] for e in json.loads(response.content)} == set(chosen)


def test_the_audit_changelist_never_counts_the_whole_table(personas, auditor_client):
    high_risk_version(personas)
    with CaptureQueriesContext(connection) as queries:
        assert auditor_client.get("/admin/common/auditevent/").status_code == 200
    counts = [
        q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "auditevent" in q["sql"]
    ]
    assert counts == [], counts


def test_the_audit_search_finds_one_objects_history_exactly(personas, auditor_client):
    version = high_risk_version(personas)
    reviews.review_submit(actor=personas.owner, version=version)
    mine = AuditEvent.objects.filter(object_type="registry.modelversion", object_id=str(version.pk))
    assert mine.exists()
    response = auditor_client.get(f"/admin/common/auditevent/?q=registry.modelversion:{version.pk}")
    assert response.status_code == 200
    shown = {e.pk for e in response.context["cl"].result_list}
    assert shown == set(mine.values_list("pk", flat=True))
    # Another object's id, or a username, finds nothing of this version's history.
    other = auditor_client.get(f"/admin/common/auditevent/?q=registry.modelversion:{version.pk}9")
    assert not set(e.pk for e in other.context["cl"].result_list) & shown
    by_actor = auditor_client.get("/admin/common/auditevent/?q=owner")
    assert {e.actor for e in by_actor.context["cl"].result_list} == {"owner"}
