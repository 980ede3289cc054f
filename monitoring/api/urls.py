from django.urls import path

from monitoring.api import views

urlpatterns = [
    path(
        "models/<str:model_name>/versions/<int:number>/predictions/",
        views.PredictionBatchView.as_view(),
        name="prediction-batch-list",
    ),
    path(
        "models/<str:model_name>/labels/", views.LabelBatchView.as_view(), name="label-batch-list"
    ),
    path("models/<str:model_name>/monitors/", views.MonitorListView.as_view(), name="monitor-list"),
    path(
        "models/<str:model_name>/monitors/<int:pk>/",
        views.MonitorDetailView.as_view(),
        name="monitor-detail",
    ),
    path(
        "models/<str:model_name>/monitors/<int:pk>/run/",
        views.MonitorRunView.as_view(),
        name="monitor-run",
    ),
    path(
        "models/<str:model_name>/monitors/<int:pk>/checks/",
        views.CheckListView.as_view(),
        name="monitor-checks",
    ),
    path("models/<str:model_name>/ab/", views.ABComparisonView.as_view(), name="ab-comparison"),
    path(
        "models/<str:model_name>/data-policy",
        views.DataPolicyView.as_view(),
        name="data-policy",
    ),
    path("alerts/", views.AlertListView.as_view(), name="alert-list"),
    path(
        "alerts/<int:pk>/acknowledge/",
        views.AlertActionView.as_view(action_name="acknowledge"),
        name="alert-acknowledge",
    ),
    path(
        "alerts/<int:pk>/resolve/",
        views.AlertActionView.as_view(action_name="resolve"),
        name="alert-resolve",
    ),
]
