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

        from common.evidence import register_evidence_recorder, register_threshold_provider
        from common.ui import register_home_section
        from governance import review_views, reviews, webhooks
        from registry.gates import register_alias_gate

        register_evidence_recorder(reviews.evidence_record)
        register_threshold_provider(reviews.policy_thresholds_for)
        register_alias_gate(reviews.deploy_gate)
        register_event_listener(webhooks.on_event)
        register_version_panel(review_views.review_panel, order=10)
        register_home_section(review_views.waiting_section, order=10)
        register_home_section(review_views.decisions_section, order=50)
