from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from common.auth import TokenLoginView

api_v1 = [
    path("auth/token/", TokenLoginView.as_view(), name="token"),
    path("", include("registry.api.urls")),
    path("", include("lifecycle.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("monitoring.api.urls")),
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    path("", include("common.urls")),
    path("", include("registry.urls")),
    path("", include("governance.urls")),
    path("", include("monitoring.urls")),
    path("", include("lifecycle.urls")),
]

handler404 = "common.views.not_found"
handler500 = "common.views.server_error"
