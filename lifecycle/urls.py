from django.urls import path

from lifecycle import views

app_name = "lifecycle"

environment = "models/<slug:name>/environments/<slug:environment>"
urlpatterns = [
    path(
        "models/<slug:name>/deployments/",
        views.deployments_panel_view,
        name="deployments-panel",
    ),
    path(f"{environment}/deploy/", views.deploy, name="deploy"),
    path(f"{environment}/rollback/", views.rollback, name="rollback"),
    path(f"{environment}/log/", views.prediction_log, name="prediction-log"),
]
