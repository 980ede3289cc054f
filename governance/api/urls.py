from django.urls import path

from governance.api import evidence_views

version = "models/<str:model_name>/versions/<int:number>"
audits = evidence_views.FairnessAuditViewSet
mitigations = evidence_views.MitigationViewSet

urlpatterns = [
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
    path(
        f"{version}/fairness-audits/<int:audit_id>/mitigations/",
        mitigations.as_view({"post": "create"}),
        name="mitigation-create",
    ),
    path(f"{version}/mitigations/", mitigations.as_view({"get": "list"}), name="mitigation-list"),
    path(f"{version}/model-card", evidence_views.ModelCardView.as_view(), name="model-card"),
]
