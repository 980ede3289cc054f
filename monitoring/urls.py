from django.urls import path

from monitoring import monitor_views, views

app_name = "monitoring"

urlpatterns = [
    path("monitoring/models/<str:name>/", views.dashboard, name="dashboard"),
    path("monitoring/models/<str:name>/alerts/", views.alerts_fragment, name="alerts"),
    path(
        "monitoring/models/<str:name>/alerts/<int:pk>/<str:action>/",
        views.alert_action,
        name="alert-action",
    ),
    path("monitoring/models/<str:name>/monitors/<int:pk>/run/", views.run_now, name="run-now"),
    path(
        "monitoring/models/<str:name>/monitors/new/",
        monitor_views.monitor_create,
        name="monitor-create",
    ),
    path(
        "monitoring/models/<str:name>/monitors/<int:pk>/edit/",
        monitor_views.monitor_edit,
        name="monitor-edit",
    ),
    path(
        "monitoring/models/<str:name>/monitors/<int:pk>/status/",
        views.check_status,
        name="check-status",
    ),
]
