from django.urls import path

from lifecycle.api import views

evaluations = views.EvaluationViewSet
retraining_runs = views.RetrainingRunViewSet

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
]
