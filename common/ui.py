"""UI helpers shared by every app (imports no domain app).

Apps contribute sections to the home page by registering a provider in their
AppConfig.ready: ``register_home_section(fn)`` where ``fn(request)`` returns
``{"title", "template", **context}`` or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.http import urlencode

from common.errors import DomainError

HomeSection = Callable[[HttpRequest], dict[str, Any] | None]
_home_sections: list[tuple[int, HomeSection]] = []


def register_home_section(provider: HomeSection, *, order: int = 100) -> None:
    if all(p is not provider for _, p in _home_sections):
        _home_sections.append((order, provider))
        _home_sections.sort(key=lambda item: item[0])


def home_sections() -> list[HomeSection]:
    return [provider for _, provider in _home_sections]


def or_404(call: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a selector for a page: its "not found" becomes Django's 404 page."""
    try:
        return call(**kwargs)
    except DomainError as exc:
        if exc.status == 404:
            raise Http404(exc.message) from None
        raise


def error_response(error: DomainError) -> JsonResponse:
    """A refusal outside any form (an htmx button, a page the user may not open),
    in the API's one error shape ``{"error": {"code", "message", "details"}}``."""
    return JsonResponse(error.as_dict(), status=error.status)


def paginate(request: HttpRequest, queryset: Any, per_page: int = 25) -> Page:
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def querystring_without_page(request: HttpRequest) -> str:
    params = {k: v for k, v in request.GET.items() if k != "page" and v}
    return urlencode(params)


def add_domain_error(form: Any, error: DomainError) -> None:
    """Show a service's refusal as a form error (the UI twin of the API error shape)."""
    form.add_error(None, error.message)
    for field, detail in (error.details or {}).items():
        if field in getattr(form, "fields", {}):
            form.add_error(field, str(detail))
