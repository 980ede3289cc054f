from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        from common.events import register_event_listener
        from governance import evidence_views, fairness_audits
        from governance.estimators import TRUSTED_TYPES
        from registry.artifacts import register_trusted_types
        from registry.views import register_version_panel

        register_trusted_types(*TRUSTED_TYPES)
        register_event_listener(fairness_audits.on_registry_event)
        register_version_panel(evidence_views.fairness_panel, order=30)
        register_version_panel(evidence_views.model_card_panel, order=40)
