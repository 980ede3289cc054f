from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle"

    def ready(self) -> None:
        from common.evidence import register_evaluation_starter
        from governance.model_cards import register_card_section
        from lifecycle import services
        from lifecycle.selectors import evaluation_card_section
        from lifecycle.views import evaluation_panel
        from registry.views import register_version_panel

        register_version_panel(evaluation_panel, order=20)
        register_card_section("evaluation", evaluation_card_section)
        # Governance's mitigation candidates are evaluated as soon as they are ready.
        register_evaluation_starter(services.evaluation_start)
