"""URLs of the serving process type (MODELGATE_PROCESS=serve): predictions, health, metrics."""

from django.urls import path

from common.telemetry import readyz
from common.views import healthz
from lifecycle.metrics import metrics_view
from lifecycle.serving import invocations

urlpatterns = [
    path(
        "serve/<str:model_name>/<str:environment>/invocations",
        invocations,
        name="serve-invocations",
    ),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]

handler404 = "common.api.json_404"
handler500 = "common.api.json_500"
