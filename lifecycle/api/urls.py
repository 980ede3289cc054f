from django.urls import path

from lifecycle.api import views

evaluations = views.EvaluationViewSet
environments = views.EnvironmentViewSet
deployments = views.DeploymentViewSet
environment = "models/<str:model_name>/environments/<str:environment>"
retraining_runs = views.RetrainingRunViewSet
mitigations = views.FairnessMitigationViewSet
version = "models/<str:model_name>/versions/<int:number>"
explanations = views.ExplanationViewSet

urlpatterns = [
    path(
        "models/<str:model_name>/versions/<int:number>/evaluations/",
        evaluations.as_view({"get": "list", "post": "create"}),
        name="evaluation-list",
    ),
    path(
        "models/<str:model_name>/versions/<int:number>/evaluations/<int:pk>/",
        evaluations.as_view({"get": "retrieve"}),
        name="evaluation-detail",
    ),
    path(
        "models/<str:model_name>/versions/<int:number>/explanations/",
        explanations.as_view({"get": "list", "post": "create"}),
        name="explanation-list",
    ),
    path(
        "models/<str:model_name>/versions/<int:number>/explanations/<int:pk>/",
        explanations.as_view({"get": "retrieve"}),
        name="explanation-detail",
    ),
    path(
        "models/<str:model_name>/environments/",
        environments.as_view({"get": "list", "post": "create"}),
        name="environment-list",
    ),
    path(f"{environment}/", environments.as_view({"get": "retrieve"}), name="environment-detail"),
    path(
        f"{environment}/rollback",
        environments.as_view({"post": "rollback"}),
        name="environment-rollback",
    ),
    path(
        f"{environment}/unfreeze",
        environments.as_view({"post": "unfreeze"}),
        name="environment-unfreeze",
    ),
    path(f"{environment}/log", environments.as_view({"get": "log"}), name="environment-log"),
    path(
        f"{environment}/deployments/",
        deployments.as_view({"get": "list", "post": "create"}),
        name="deployment-list",
    ),
    path(
        f"{environment}/deployments/<int:pk>/",
        deployments.as_view({"get": "retrieve"}),
        name="deployment-detail",
    ),
    *[
        path(
            f"{environment}/deployments/<int:pk>/{action}",
            deployments.as_view({"post": action}),
            name=f"deployment-{action}",
        )
        for action in ("promote", "pause", "resume", "abort")
    ],
    path(
        "models/<str:model_name>/retraining-policy",
        views.RetrainingPolicyView.as_view(),
        name="retraining-policy",
    ),
    path(
        "models/<str:model_name>/retrain/",
        retraining_runs.as_view({"post": "create"}),
        name="retrain",
    ),
    path(
        "models/<str:model_name>/retraining-runs/",
        retraining_runs.as_view({"get": "list"}),
        name="retraining-run-list",
    ),
    path(
        "models/<str:model_name>/retraining-runs/<int:pk>/",
        retraining_runs.as_view({"get": "retrieve"}),
        name="retraining-run-detail",
    ),
    # A failed audit's mitigation: governance's URLs, lifecycle's retraining runs.
    path(
        f"{version}/fairness-audits/<int:audit_id>/mitigations/",
        mitigations.as_view({"post": "create"}),
        name="mitigation-create",
    ),
    path(f"{version}/mitigations/", mitigations.as_view({"get": "list"}), name="mitigation-list"),
]
