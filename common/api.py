"""DRF base pieces: the error handler (one JSON error shape), pagination, parsers."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from common.errors import DomainError

logger = logging.getLogger(__name__)
request_logger = logging.getLogger("django.request")

_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _validation_message(detail: Any) -> str:
    """A one-line summary of DRF validation details: the first problem found."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _validation_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0])
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Turn every error into ``{"error": {"code", "message", "details"}}``."""
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(exc.as_dict(), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("payload_too_large", "The request body is larger than the limit."),
            status=413,
        )
    if not isinstance(exc, exceptions.APIException):
        return _server_error(exc, context)

    set_rollback()
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    code = code or (exc.get_codes() if isinstance(exc.get_codes(), str) else "error")
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = error_body("invalid", _validation_message(exc.detail), details)  # type: ignore[arg-type]
    else:
        body = error_body(str(code), str(exc.detail))
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    return Response(body, status=exc.status_code, headers=headers)


def _server_error(exc: Exception, context: dict[str, Any]) -> Response:
    """A bug: logged and signalled as Django would, answered in the one error shape.

    Never left to Django: with DEBUG on (``make run``) it would answer its debug
    page, tracebacks and settings included, to whoever sent the request.
    """
    set_rollback()
    request = getattr(context.get("request"), "_request", None)
    request_logger.error(
        "Internal Server Error: %s",
        getattr(request, "path", "?"),
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"status_code": 500, "request": request},
    )
    # Error reporters listen to this signal, and so does Django's test client,
    # which re-raises the exception in the test that caused it.
    got_request_exception.send(sender=None, request=request)
    return Response(
        error_body("server_error", "The server failed; the error has been logged."), status=500
    )


def error_for_status(status: int) -> dict[str, Any]:
    """The error body for a bare HTTP status (a response Django made, not a view)."""
    codes = {
        400: ("bad_request", "The request is malformed."),
        403: ("permission_denied", "You are not allowed to do this."),
        404: ("not_found", "No such endpoint."),
        405: ("method_not_allowed", "This method is not allowed here."),
        413: ("payload_too_large", "The request body is larger than the limit."),
    }
    if status >= 500:
        return error_body("server_error", "The server failed; the error has been logged.")
    code, message = codes.get(status, ("error", f"The request failed with status {status}."))
    return error_body(code, message)


def json_404(request: Any, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", "No such endpoint."), status=404)


def json_500(request: Any) -> JsonResponse:
    return JsonResponse(
        error_body("server_error", "The server failed; the error has been logged."), status=500
    )
