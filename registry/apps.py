from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self) -> None:
        from common.ui import register_home_section
        from registry.views import my_models_section

        register_home_section(my_models_section, order=20)
