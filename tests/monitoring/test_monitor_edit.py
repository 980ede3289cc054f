"""Creating and editing a monitor: ``monitor_update`` (the checks ``monitor_create``
makes), ``PATCH /api/v1/models/<name>/monitors/<id>/``, and the dashboard's forms on the
same services with the same refusals."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from common.errors import DomainError
from common.models import AuditEvent
from monitoring import services
from monitoring.models import Monitor
from tests.conftest import classifier_bytes, client_for, ready_version
from tests.monitoring.test_dashboard import populate

pytestmark = pytest.mark.django_db
BASE = "/api/v1/models/credit/monitors/"


def web(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def daily(monitored: Any, personas: Any, **kwargs: Any) -> Monitor:
    return services.monitor_create(
        actor=personas.owner,
        model=monitored.registered_model,
        version=monitored,
        name=kwargs.pop("name", "daily"),
        checks=["drift", "performance"],
        **kwargs,
    )


class TestMonitorUpdate:
    def test_changes_are_saved_checked_and_audited_with_before_and_after(
        self, monitored: Any, personas: Any
    ) -> None:
        monitor = daily(monitored, personas, thresholds={"psi": 0.2})
        services.monitor_update(
            actor=personas.owner,
            monitor=monitor,
            window_hours=48,
            thresholds={"drift_share": 0.5},
            enabled=False,
        )
        monitor.refresh_from_db()
        assert monitor.window_hours == 48 and monitor.enabled is False
        # A partial change of thresholds keeps the others.
        assert monitor.thresholds["psi"] == 0.2 and monitor.thresholds["drift_share"] == 0.5
        event = AuditEvent.objects.get(action="monitoring.monitor.updated")
        assert event.before == {
            "window_hours": 24,
            "enabled": True,
            "thresholds": {"p_value": 0.05, "psi": 0.2, "drift_share": 0.3, "metric_drop": 0.05},
        }
        assert event.after["window_hours"] == 48 and event.after["enabled"] is False

    @pytest.mark.parametrize(
        ("changes", "code"),
        [
            ({"checks": ["vibes"]}, "invalid"),
            ({"window_hours": 0}, "invalid"),
            ({"drift_method": "guess"}, "invalid"),
            ({"thresholds": {"nonsense": 1}}, "invalid"),
            ({"weights": {"shoe_size": 1}}, "invalid"),
            ({"created_by": None}, "invalid"),
            ({"name": "other"}, "exists"),
        ],
    )
    def test_bad_changes_are_refused_as_on_create_and_nothing_changes(
        self, monitored: Any, personas: Any, changes: dict[str, Any], code: str
    ) -> None:
        daily(monitored, personas, name="other")
        monitor = daily(monitored, personas)
        with pytest.raises(DomainError) as refused:
            services.monitor_update(actor=personas.owner, monitor=monitor, **changes)
        assert refused.value.code == code
        fresh = Monitor.objects.get(pk=monitor.pk)
        assert (fresh.name, fresh.checks, fresh.window_hours) == ("daily", monitor.checks, 24)
        assert not AuditEvent.objects.filter(action="monitoring.monitor.updated").exists()

    def test_a_version_without_training_data_cannot_take_drift_checks(
        self, monitored: Any, personas: Any
    ) -> None:
        monitor = daily(monitored, personas)
        bare = ready_version(
            monitored.registered_model, personas.owner, artifact=classifier_bytes(1)
        )
        with pytest.raises(DomainError) as refused:
            services.monitor_update(actor=personas.owner, monitor=monitor, version=bare)
        assert refused.value.code == "no_reference"
        services.monitor_update(
            actor=personas.owner, monitor=monitor, version=bare, checks=["performance"]
        )
        assert Monitor.objects.get().version == bare

    def test_a_viewer_may_not_change_a_monitor(self, monitored: Any, personas: Any) -> None:
        monitor = daily(monitored, personas)
        with pytest.raises(DomainError) as refused:
            services.monitor_update(actor=personas.viewer, monitor=monitor, window_hours=2)
        assert refused.value.status == 403


class TestMonitorPatch:
    def test_the_owner_patches_a_monitor_by_alias_or_number(
        self, monitored: Any, personas: Any
    ) -> None:
        monitor = daily(monitored, personas)
        response = client_for(personas.owner).patch(
            f"{BASE}{monitor.pk}/",
            {"min_rows": 10, "notify": False, "version": "1"},
            format="json",
        )
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["min_rows"] == 10 and body["notify"] is False and body["version"] == 1

    def test_rights_and_bad_input_get_the_one_error_shape(
        self, monitored: Any, personas: Any
    ) -> None:
        monitor = daily(monitored, personas)
        url = f"{BASE}{monitor.pk}/"
        viewer = client_for(personas.viewer).patch(url, {"min_rows": 10}, format="json")
        assert viewer.status_code == 403 and viewer.json()["error"]["code"] == "permission_denied"
        outsider = client_for(personas.outsider).patch(url, {"min_rows": 10}, format="json")
        assert outsider.status_code == 404
        owner = client_for(personas.owner)
        for body in ({"min_rows": 0}, {"created_by": "x"}, {"checks": ["vibes"]}, [1, 2]):
            response = owner.patch(url, body, format="json")
            assert response.status_code == 400, (body, response.content)
            assert set(response.json()["error"]) == {"code", "message", "details"}
        assert owner.patch(url, {"version": "99"}, format="json").status_code == 404
        assert Monitor.objects.get().min_rows == 100


class TestMonitorForms:
    def test_the_owner_creates_a_monitor_from_the_dashboard(
        self, monitored: Any, personas: Any
    ) -> None:
        client = web(personas.owner)
        dashboard = client.get("/monitoring/models/credit/").content.decode()
        assert 'id="monitor-new"' in dashboard
        form = client.get("/monitoring/models/credit/monitors/new/")
        assert form.status_code == 200 and 'name="checks"' in form.content.decode()
        response = client.post(
            "/monitoring/models/credit/monitors/new/",
            {
                "name": "weekly",
                "version": "1",
                "checks": ["drift", "performance"],
                "window_hours": "168",
                "drift_method": "auto",
                "schedule_minutes": "1440",
                "min_rows": "50",
                "baseline": "trailing",
                "baseline_days": "14",
                "metric_tolerance": "relative",
                "thresholds": '{"drift_share": 0.4}',
                "notify": "on",
            },
        )
        monitor = Monitor.objects.get()
        assert response.status_code == 302 and response["Location"].endswith(
            f"?monitor={monitor.pk}"
        )
        assert monitor.name == "weekly" and monitor.window_hours == 168
        assert monitor.thresholds["drift_share"] == 0.4 and monitor.created_by == personas.owner
        assert (monitor.baseline, monitor.baseline_days, monitor.metric_tolerance) == (
            "trailing",
            14,
            "relative",
        )

    def test_a_refusal_of_the_service_is_shown_on_the_form(
        self, monitored: Any, personas: Any
    ) -> None:
        daily(monitored, personas)
        response = web(personas.owner).post(
            "/monitoring/models/credit/monitors/new/",
            {
                "name": "daily",
                "version": "1",
                "checks": ["performance"],
                "window_hours": "24",
                "drift_method": "auto",
                "schedule_minutes": "60",
                "min_rows": "100",
                "baseline": "reference",
                "baseline_days": "7",
                "metric_tolerance": "absolute",
            },
        )
        assert response.status_code == 200
        assert "credit already has a monitor named &#x27;daily&#x27;." in response.content.decode()
        assert Monitor.objects.count() == 1

    def test_the_owner_edits_a_monitor_and_only_what_changed_is_written(
        self, monitored: Any, personas: Any
    ) -> None:
        monitor = daily(monitored, personas, weights={"age": 2.0, "income": 1.0})
        client = web(personas.owner)
        page = client.get(f"/monitoring/models/credit/monitors/{monitor.pk}/edit/")
        html = page.content.decode()
        assert 'value="daily"' in html and "monitor-form" in html
        response = client.post(
            f"/monitoring/models/credit/monitors/{monitor.pk}/edit/",
            {
                "name": "daily",
                "version": "1",
                "checks": ["drift"],
                "window_hours": "12",
                "drift_method": "auto",
                "schedule_minutes": "60",
                "min_rows": "100",
                "baseline": "reference",
                "baseline_days": "7",
                "metric_tolerance": "absolute",
                "thresholds": '{"p_value": 0.05, "psi": 0.1, "drift_share": 0.3, "metric_drop": 0.05}',
                "notify": "on",
                "enabled": "on",
            },
        )
        assert response.status_code == 302
        monitor.refresh_from_db()
        assert monitor.checks == ["drift"] and monitor.window_hours == 12
        assert monitor.weights == {"age": 2.0, "income": 1.0}  # not on the form: kept
        event = AuditEvent.objects.get(action="monitoring.monitor.updated")
        assert set(event.after) == {"checks", "window_hours"}

    def test_a_viewer_sees_no_button_and_is_refused_403_an_outsider_404(
        self, monitored: Any, personas: Any
    ) -> None:
        monitor = populate(monitored, personas)
        viewer = web(personas.viewer)
        dashboard = viewer.get("/monitoring/models/credit/").content.decode()
        assert "monitor-new" not in dashboard and "monitor-edit" not in dashboard
        assert "Acknowledge</button>" not in dashboard
        for url in (
            "/monitoring/models/credit/monitors/new/",
            f"/monitoring/models/credit/monitors/{monitor.pk}/edit/",
        ):
            for response in (viewer.get(url), viewer.post(url, {"name": "x", "version": "1"})):
                assert response.status_code == 403
                assert response.json()["error"]["code"] == "permission_denied"
            assert web(personas.outsider).post(url, {"name": "x"}).status_code == 404
        assert list(Monitor.objects.values_list("name", flat=True)) == ["daily"]
        owner_dashboard = web(personas.owner).get("/monitoring/models/credit/").content.decode()
        assert "monitor-edit" in owner_dashboard and "Acknowledge</button>" in owner_dashboard


class TestFollowAndBaselineOnEdit:
    def test_a_patch_makes_the_monitor_follow_an_alias_and_judge_another_baseline(
        self, monitored: Any, personas: Any
    ) -> None:
        from registry.services import alias_set

        monitor = daily(monitored, personas)
        alias_set(
            actor=personas.owner,
            model=monitored.registered_model,
            name="candidate",
            version_number=monitored.number,
        )
        url = f"{BASE}{monitor.pk}/"
        response = client_for(personas.owner).patch(
            url,
            {"alias": "candidate", "baseline": "trailing", "baseline_days": 3},
            format="json",
        )
        assert response.status_code == 200, response.json()
        monitor.refresh_from_db()
        assert (monitor.alias, monitor.baseline, monitor.baseline_days) == (
            "candidate",
            "trailing",
            3,
        )
        assert monitor.version == monitored
        event = AuditEvent.objects.get(action="monitoring.monitor.updated")
        assert event.after == {"alias": "candidate", "baseline": "trailing", "baseline_days": 3}

    @pytest.mark.parametrize(
        "body",
        [
            {"alias": "nowhere"},
            {"baseline": "yesterday"},
            {"baseline_days": 0},
            {"metric_tolerance": "loose"},
        ],
    )
    def test_bad_follow_or_baseline_changes_are_refused_and_nothing_changes(
        self, monitored: Any, personas: Any, body: dict[str, Any]
    ) -> None:
        monitor = daily(monitored, personas)
        response = client_for(personas.owner).patch(f"{BASE}{monitor.pk}/", body, format="json")
        assert response.status_code == 400, response.content
        fresh = Monitor.objects.get(pk=monitor.pk)
        assert (fresh.alias, fresh.baseline, fresh.baseline_days) == ("", "reference", 7)
        assert not AuditEvent.objects.filter(action="monitoring.monitor.updated").exists()
