from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from common.events import register_event_listener
        from common.ui import register_home_section
        from monitoring import views
        from registry.views import register_version_panel

        register_version_panel(views.version_panel, order=50)
        register_home_section(views.home_section, order=50)

        from monitoring.timeline import alert_entries
        from registry.timeline import register_timeline_source

        register_timeline_source(alert_entries)
        register_event_listener(queue_alert_email)
        register_event_listener(queue_reference_profile)


def queue_alert_email(name: str, payload: dict) -> None:
    """Event listener: mail about a newly opened alert, from a worker (never inline)."""
    if name == "monitoring.alert.opened":
        from celery import current_app

        current_app.send_task("monitoring.tasks.email_alert", args=[payload["alert"]])


def queue_reference_profile(name: str, payload: dict) -> None:
    """Event listener: a version that became ready gets its drift baseline built by a
    worker (a ``ProfileBuild`` job), so the review can count it before any monitor
    exists. Should this event be lost (the process died right after the commit),
    the first ingestion or monitor creation asks for the build instead."""
    if name == "registry.version.ready":
        from monitoring import services
        from registry.models import ModelVersion

        version = ModelVersion.objects.filter(pk=payload["version_id"]).first()
        if version is not None:
            services.reference_profile_request(version=version)
