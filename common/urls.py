from django.contrib.auth import views as auth_views
from django.urls import path

from common import telemetry, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", telemetry.readyz, name="readyz"),
    path("metrics", telemetry.metrics_view, name="metrics"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
