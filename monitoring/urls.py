from django.urls import path

from monitoring import views

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
        "monitoring/models/<str:name>/monitors/<int:pk>/status/",
        views.check_status,
        name="check-status",
    ),
]
