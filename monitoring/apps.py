from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from common.ui import register_home_section
        from monitoring import views
        from registry.views import register_version_panel

        register_version_panel(views.version_panel, order=50)
        register_home_section(views.home_section, order=50)
