from django.urls import path

from lifecycle import retraining_views, views

app_name = "lifecycle"

environment = "models/<slug:name>/environments/<slug:environment>"
retraining = "models/<slug:name>/retraining"
urlpatterns = [
    path(
        "models/<slug:name>/deployments/",
        views.deployments_panel_view,
        name="deployments-panel",
    ),
    path(f"{environment}/deploy/", views.deploy, name="deploy"),
    path(f"{environment}/rollback/", views.rollback, name="rollback"),
    path(f"{environment}/log/", views.prediction_log, name="prediction-log"),
    path(
        f"{environment}/deployments/<int:pk>/action/",
        views.rollout_action,
        name="rollout-action",
    ),
    path(f"{retraining}/policy/", retraining_views.policy_edit, name="retraining-policy"),
    path(f"{retraining}/run/", retraining_views.retrain_now, name="retrain-now"),
    path(f"{retraining}/runs/<int:pk>/", retraining_views.run_detail, name="retraining-run"),
]
