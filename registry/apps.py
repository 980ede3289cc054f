from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self) -> None:
        from django.conf import settings

        from common.ui import register_home_section
        from registry import artifacts, timeline_views
        from registry.views import my_models_section, register_model_panel

        register_home_section(my_models_section, order=20)
        # The loop on one time axis: first on the model page, what an auditor asks for first.
        register_model_panel(timeline_views.timeline_panel, order=5)
        # Read at each load, so the limits follow the settings in effect.
        artifacts.use_settings(lambda: settings)
        problems = [
            problem
            for name in settings.ARTIFACT_EXTRA_TYPES
            if (problem := artifacts.type_name_problem(name))
        ]
        if problems:
            raise ImproperlyConfigured("ARTIFACT_EXTRA_TYPES: " + "; ".join(problems))
