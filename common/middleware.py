from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from csp.middleware import CSPMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from common.api import error_for_status
from common.context import request_context

# A caller may pass its own id (a pipeline run, a trace id); anything else is
# replaced so that a header can never inject text into the audit trail.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ApiErrorShapeMiddleware:
    """Under ``/api/``, every error is the JSON error shape, DEBUG or not.

    DRF views answer their errors through ``common.api.exception_handler``.
    What fails outside them (an unknown URL, a Host header that is not allowed,
    a failing middleware) is answered by Django itself: with DEBUG on, by its
    debug page, which shows URL patterns, settings and source to any caller.
    Such a response (HTML or plain text) is replaced here with the error shape
    and the same status. Outermost, so that it sees every other layer's answer.
    """

    KEPT_HEADERS = ("X-Request-ID", "WWW-Authenticate", "Retry-After", "Allow")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if response.status_code < 400 or not request.path.startswith("/api/"):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        data = getattr(response, "data", None)  # a DRF error rendered as Markdown or HTML
        body = data if isinstance(data, dict) and "error" in data else None
        replacement = JsonResponse(
            body or error_for_status(response.status_code), status=response.status_code
        )
        for header in self.KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _SAFE_ID.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        with request_context(request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """CSP on every page; not on JSON API responses, where it protects nothing
    (browsers apply it to documents) and costs a policy build per request."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if request.path.startswith("/api/v1/"):
            return response
        return super().process_response(request, response)
