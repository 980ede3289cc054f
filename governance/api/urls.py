from django.urls import path

from governance.api import (
    audit_trail_views,
    evidence_views,
    policy_views,
    review_views,
    risk_tier_views,
    webhook_views,
)

version = "models/<str:model_name>/versions/<int:number>"
audits = evidence_views.FairnessAuditViewSet
tier_changes = risk_tier_views.RiskTierChangeViewSet
tier_change = "models/<str:model_name>/risk-tier-changes/<int:pk>"

urlpatterns = [
    path(
        f"{version}/review/",
        review_views.ReviewViewSet.as_view({"get": "retrieve", "post": "create"}),
        name="review",
    ),
    path(
        f"{version}/review/signoffs/",
        review_views.SignOffViewSet.as_view({"get": "list", "post": "create"}),
        name="signoff-list",
    ),
    path("policies/", policy_views.PolicyViewSet.as_view({"get": "list"}), name="policy-list"),
    path(
        "policies/<int:pk>/",
        policy_views.PolicyViewSet.as_view({"get": "retrieve"}),
        name="policy-detail",
    ),
    path(
        "audit/events/",
        audit_trail_views.AuditEventViewSet.as_view({"get": "list"}),
        name="audit-event-list",
    ),
    path(
        "audit/events/<int:seq>/",
        audit_trail_views.AuditEventViewSet.as_view({"get": "retrieve"}),
        name="audit-event-detail",
    ),
    path(
        "webhooks/",
        webhook_views.WebhookViewSet.as_view({"get": "list", "post": "create"}),
        name="webhook-list",
    ),
    path(
        "webhooks/<int:pk>/",
        webhook_views.WebhookViewSet.as_view({"delete": "destroy"}),
        name="webhook-detail",
    ),
    path(
        "webhooks/<int:pk>/deliveries/",
        webhook_views.WebhookViewSet.as_view({"get": "deliveries"}),
        name="webhook-deliveries",
    ),
    path(
        f"{version}/fairness-audits/",
        audits.as_view({"get": "list", "post": "create"}),
        name="fairness-audit-list",
    ),
    path(
        f"{version}/fairness-audits/<int:pk>/",
        audits.as_view({"get": "retrieve"}),
        name="fairness-audit-detail",
    ),
    path(f"{version}/model-card", evidence_views.ModelCardView.as_view(), name="model-card"),
    path(
        "models/<str:model_name>/risk-tier-changes/",
        tier_changes.as_view({"get": "list", "post": "create"}),
        name="risk-tier-change-list",
    ),
    path(
        f"{tier_change}/",
        tier_changes.as_view({"get": "retrieve"}),
        name="risk-tier-change-detail",
    ),
    path(
        f"{tier_change}/approve/",
        tier_changes.as_view({"post": "approve"}),
        name="risk-tier-change-approve",
    ),
    path(
        f"{tier_change}/reject/",
        tier_changes.as_view({"post": "reject"}),
        name="risk-tier-change-reject",
    ),
    path(
        f"{tier_change}/withdraw/",
        tier_changes.as_view({"post": "withdraw"}),
        name="risk-tier-change-withdraw",
    ),
]
