from django.urls import path

from lifecycle import action_views, retraining_views, views

app_name = "lifecycle"

environment = "models/<slug:name>/environments/<slug:environment>"
retraining = "models/<slug:name>/retraining"
version = "models/<slug:name>/versions/<int:number>"
urlpatterns = [
    path(
        "models/<slug:name>/deployments/",
        views.deployments_panel_view,
        name="deployments-panel",
    ),
    path(f"{environment}/deploy/", views.deploy, name="deploy"),
    path(f"{version}/explanations/", views.explanations_panel_view, name="explanations-panel"),
    path(f"{version}/explanations/start/", views.explanation_start, name="explanation-start"),
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
    # "Start mitigation" on a failed audit, at the URL governance's form always posted to.
    path(
        f"{version}/fairness-audits/<int:audit_id>/mitigations/",
        retraining_views.mitigation_create,
        name="mitigation-create",
    ),
    path(f"{version}/mitigation/", retraining_views.mitigation_panel_view, name="mitigation-panel"),
    path(f"{version}/evaluation/", action_views.evaluation_panel_view, name="evaluation-panel"),
    path(
        f"{version}/evaluations/request/",
        action_views.evaluation_request,
        name="evaluation-request",
    ),
]
