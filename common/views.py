from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.defaults import page_not_found
from django.views.defaults import server_error as html_server_error

from common.api import json_404, json_500
from common.ui import home_sections


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return page_not_found(request, exception, template_name="common/404.html")


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_500(request)
    return html_server_error(request)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    sections: list[dict[str, Any]] = [provider(request) for provider in home_sections()]
    return render(request, "common/home.html", {"sections": [s for s in sections if s]})


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and crawlers ask for /favicon.ico on any page (the admin's, the API docs'):
    send them to the static file (hashed name in production, so it can be cached)."""
    return redirect(static("common/favicon.ico"), permanent=True)


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. (No database access, for load balancers.)"""
    return HttpResponse("ok", content_type="text/plain")
