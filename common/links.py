"""Absolute links for what leaves the web request: e-mails, printed messages."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def site_path(name: str, *args: object) -> str:
    """The web site's path for a URL name, whichever process asks (the serving
    process's own URLconf has only /serve/): for links that selectors put in what
    they return."""
    return reverse(name, args=args, urlconf=settings.SITE_URLCONF)


def absolute_url(path_or_name: str, *args: object) -> str:
    """``SITE_URL`` + a path (``"/models/x/"``) or a URL name with its arguments,
    reversed against the web site's URLs (``SITE_URLCONF``) even in the serving
    process, whose own URLconf has only /serve/."""
    path = path_or_name if path_or_name.startswith("/") else site_path(path_or_name, *args)
    return f"{settings.SITE_URL}{path}"
