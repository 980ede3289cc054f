"""Serve plotly's bundled JavaScript as ``/static/plotly/plotly.min.js``.

The plotly Python package ships the exact plotly.js build it was made for; a
finder exposes that file to ``collectstatic`` and whitenoise instead of copying
a 4 MB vendored file into the repository or loading it from a CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_DIR = Path(plotly.__file__).parent / "package_data"
PREFIX = "plotly/"
FILES = ("plotly.min.js",)


class PlotlyFinder(BaseFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.storage = FileSystemStorage(location=str(PLOTLY_DIR))
        self.storage.prefix = PREFIX.rstrip("/")  # type: ignore[attr-defined]

    def check(self, **kwargs: Any) -> list[Any]:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        name = path.removeprefix(PREFIX)
        if path.startswith(PREFIX) and name in FILES:
            match = str(PLOTLY_DIR / name)
            return [match] if find_all or kwargs.get("all") else match
        return [] if find_all or kwargs.get("all") else None

    def list(self, ignore_patterns: Any) -> Any:
        for name in FILES:
            yield name, self.storage
