from django.urls import path

from lifecycle.api import views

evaluations = views.EvaluationViewSet

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
]
