from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle"

    def ready(self) -> None:
        from lifecycle.views import evaluation_panel
        from registry.views import register_version_panel

        register_version_panel(evaluation_panel)
