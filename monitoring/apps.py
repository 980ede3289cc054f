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
        register_event_listener(queue_alert_email)
        register_event_listener(queue_reference_profile)


def queue_alert_email(name: str, payload: dict) -> None:
    """Event listener: mail about a newly opened alert, from a worker (never inline)."""
    if name == "monitoring.alert.opened":
        from celery import current_app

        current_app.send_task("monitoring.tasks.email_alert", args=[payload["alert"]])


REFERENCE_TASK = "monitoring.tasks.heavy_build_reference_profile"


def queue_reference_profile(name: str, payload: dict) -> None:
    """Event listener: a version that became ready gets its drift baseline built
    by a worker, so the review can count it before any monitor exists. (Creating
    a monitor or ingesting a batch builds it too, if this message was lost.)"""
    if name == "registry.version.ready":
        from celery import current_app

        current_app.send_task(REFERENCE_TASK, args=[payload["version_id"]])
