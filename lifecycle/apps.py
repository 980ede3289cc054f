from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = "Lifecycle"

    def ready(self) -> None:
        from governance.model_cards import register_card_section
        from lifecycle.deployments import environment_alias_guard
        from lifecycle.selectors import evaluation_card_section
        from lifecycle.views import (
            deployments_panel,
            evaluation_panel,
            explanations_panel,
            version_deployments_panel,
        )
        from registry.gates import register_alias_guard
        from registry.views import register_model_panel, register_version_panel

        register_version_panel(evaluation_panel, order=20)
        register_version_panel(explanations_panel, order=22)
        register_version_panel(version_deployments_panel, order=5)
        register_model_panel(deployments_panel, order=10)
        register_card_section("evaluation", evaluation_card_section)
        register_alias_guard(environment_alias_guard)
        self._retraining()

        from lifecycle.timeline import lifecycle_entries
        from registry.timeline import register_timeline_source

        register_timeline_source(lifecycle_entries)

    @staticmethod
    def _retraining() -> None:
        """Retraining hooks: triggers and follow-ups by event, panels, alert links."""
        from common.events import register_event_listener
        from lifecycle import retraining, retraining_views
        from monitoring.views import register_alert_links
        from registry.views import register_model_panel, register_version_panel

        register_event_listener(retraining.on_event)
        register_model_panel(retraining_views.retraining_panel, order=30)
        register_version_panel(retraining_views.retrained_version_panel, order=15)
        register_version_panel(retraining_views.mitigation_panel, order=35)  # after fairness
        register_alert_links(retraining_views.alert_links)
