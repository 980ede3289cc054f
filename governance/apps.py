from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_default_policies(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Version 1 of each tier's policy, from ``governance.policies.DEFAULT_POLICIES``.

    Also after a test database flush (which empties the table the data
    migration filled, and then sends post_migrate); never touches a tier that
    has a policy.
    """
    from governance.models import ApprovalPolicy
    from governance.policies import DEFAULT_POLICIES

    for tier, fields in DEFAULT_POLICIES.items():
        if not ApprovalPolicy.objects.using(using).filter(risk_tier=tier).exists():
            ApprovalPolicy.objects.using(using).create(risk_tier=tier, version=1, **fields)


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        post_migrate.connect(ensure_default_policies, sender=self, dispatch_uid="policies")
        from common.events import register_event_listener
        from governance import evidence_views
        from governance.estimators import TRUSTED_TYPES
        from registry.artifacts import register_trusted_types
        from registry.views import register_version_panel

        register_trusted_types(*TRUSTED_TYPES)
        register_version_panel(evidence_views.evidence_summary_panel, order=1)
        register_version_panel(evidence_views.fairness_panel, order=30)
        register_version_panel(evidence_views.model_card_panel, order=40)

        from common.evidence import register_evidence_recorder, register_threshold_provider
        from common.ui import register_home_section
        from governance import policies, review_views, reviews, webhooks
        from registry.gates import register_alias_gate

        register_evidence_recorder(reviews.evidence_record)
        register_threshold_provider(policies.policy_thresholds_for)
        register_alias_gate(reviews.deploy_gate)
        register_event_listener(webhooks.on_event)
        register_version_panel(review_views.review_panel, order=10)
        register_home_section(review_views.waiting_section, order=10)
        register_home_section(review_views.decisions_section, order=50)

        from governance import risk_tier_views, risk_tiers
        from registry.gates import register_data_hold, register_model_change_gate
        from registry.views import register_model_panel

        register_model_change_gate(risk_tiers.model_change_gate)
        register_data_hold(risk_tiers.versions_under_open_review)
        register_model_panel(risk_tier_views.risk_tier_panel, order=10)

        from governance.timeline import review_entries
        from registry.timeline import register_timeline_source

        register_timeline_source(review_entries)
