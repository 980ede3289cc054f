"""Absolute links for what leaves the web request: e-mails, printed messages."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def absolute_url(path_or_name: str, *args: object) -> str:
    """``SITE_URL`` + a path (``"/models/x/"``) or a URL name with its arguments."""
    path = path_or_name if path_or_name.startswith("/") else reverse(path_or_name, args=args)
    return f"{settings.SITE_URL}{path}"
