from django.urls import path

from registry.api import timeline, views

models = views.RegisteredModelViewSet
versions = views.ModelVersionViewSet
datasets = views.DatasetViewSet

urlpatterns = [
    path("models/", models.as_view({"get": "list", "post": "create"}), name="model-list"),
    path(
        "models/<str:name>/",
        models.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="model-detail",
    ),
    path(
        "models/<str:model_name>/versions/",
        versions.as_view({"get": "list", "post": "create"}),
        name="version-list",
    ),
    path(
        "models/<str:model_name>/versions/<int:number>/",
        versions.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="version-detail",
    ),
    path(
        "models/<str:model_name>/versions/<int:number>/artifact",
        versions.as_view({"get": "artifact"}),
        name="version-artifact",
    ),
    path("models/<str:model_name>/aliases/", views.AliasListView.as_view(), name="alias-list"),
    path(
        "models/<str:model_name>/timeline/",
        timeline.TimelineView.as_view(),
        name="model-timeline",
    ),
    path(
        "models/<str:model_name>/aliases/<str:alias>",
        views.AliasView.as_view(),
        name="alias-detail",
    ),
    path("datasets/", datasets.as_view({"get": "list", "post": "create"}), name="dataset-list"),
    path("datasets/<int:pk>/", datasets.as_view({"get": "retrieve"}), name="dataset-detail"),
    path(
        "datasets/<int:pk>/download", datasets.as_view({"get": "download"}), name="dataset-download"
    ),
]
