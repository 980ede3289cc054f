"""The model page's Timeline panel, and its fragment (kind filter, older entries)."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from common.errors import DomainError
from common.ui import or_404
from registry import selectors, timeline
from registry.models import RegisteredModel

PANEL_SIZE = 12
KIND_LABELS = {
    "alert": "Alerts",
    "retraining_run": "Retraining runs",
    "version": "Versions",
    "review": "Reviews",
    "signoff": "Sign-offs",
    "deployment": "Deployments",
    "rollback": "Rollbacks",
}


def _context(request: HttpRequest, model: RegisteredModel) -> dict[str, Any]:
    try:
        kinds = timeline.parse_kinds(request.GET.getlist("kind"))
        cursor = timeline.parse_cursor(request.GET.get("cursor"))
    except DomainError:  # a hand-edited link: show everything from the top
        kinds, cursor = timeline.KINDS, None
    entries, more = timeline.timeline_list(
        user=request.user, model=model, kinds=kinds, cursor=cursor, limit=PANEL_SIZE
    )
    counts = Counter(e.kind for e in entries)
    url = reverse("registry:model-timeline", args=[model.name])
    selected = "" if kinds == timeline.KINDS else ",".join(kinds)
    return {
        "id": "timeline",
        "title": "Timeline",
        "template": "registry/_timeline.html",
        "model": model,
        "entries": entries,
        "summary": ", ".join(
            f"{counts[k]} {KIND_LABELS[k].lower()}" for k in timeline.KINDS if counts[k]
        ),
        "url": url,
        "older_url": f"{url}?{urlencode({'cursor': entries[-1].cursor, 'kind': selected})}"
        if more
        else "",
        "selected": selected,
        "filters": [{"kind": k, "label": KIND_LABELS[k]} for k in timeline.KINDS],
        "api_url": reverse("api:model-timeline", args=[model.name]),
        "continued": cursor is not None,
    }


def timeline_panel(request: HttpRequest, model: RegisteredModel) -> dict[str, Any] | None:
    return _context(request, model)


@login_required
def timeline_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """The panel again (a kind filter), or only the older rows (``cursor``)."""
    model = or_404(selectors.model_get, user=request.user, name=name)
    panel = _context(request, model)
    if panel["continued"]:
        return render(request, "registry/_timeline_rows.html", {"panel": panel})
    return render(request, "common/panel.html", {"panel": panel})
