from django.urls import path

from lifecycle import retraining_views

app_name = "lifecycle"

retraining = "models/<slug:name>/retraining"
urlpatterns = [
    path(f"{retraining}/policy/", retraining_views.policy_edit, name="retraining-policy"),
    path(f"{retraining}/run/", retraining_views.retrain_now, name="retrain-now"),
    path(f"{retraining}/runs/<int:pk>/", retraining_views.run_detail, name="retraining-run"),
]
