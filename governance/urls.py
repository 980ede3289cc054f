from django.urls import path

from governance import evidence_views, review_views, risk_tier_views

app_name = "governance"

version = "models/<slug:name>/versions/<int:number>"
urlpatterns = [
    path("reviews/", review_views.review_list, name="review-list"),
    path(f"{version}/review/", review_views.review_page, name="review"),
    path(f"{version}/review/submit/", review_views.review_submit, name="review-submit"),
    path(f"{version}/review/sign/", review_views.signoff_create, name="signoff-create"),
    path(
        f"{version}/fairness-audits/",
        evidence_views.fairness_audit_create,
        name="fairness-audit-create",
    ),
    path(f"{version}/fairness/", evidence_views.fairness_panel_view, name="fairness-panel"),
    path(f"{version}/model-card/", evidence_views.model_card_export, name="model-card-export"),
    path(f"{version}/model-card/edit/", evidence_views.model_card_edit, name="model-card-edit"),
    path(
        "models/<slug:name>/risk-tier-changes/",
        risk_tier_views.risk_tier_change_request,
        name="risk-tier-change-request",
    ),
    path(
        "models/<slug:name>/risk-tier-changes/<int:pk>/decide/",
        risk_tier_views.risk_tier_change_decide,
        name="risk-tier-change-decide",
    ),
    path(
        "models/<slug:name>/risk-tier-changes/<int:pk>/withdraw/",
        risk_tier_views.risk_tier_change_withdraw,
        name="risk-tier-change-withdraw",
    ),
]
