"""Demo state for the monitoring app, loaded by `manage.py demo` (idempotent)."""

from __future__ import annotations

from typing import Any


def load(command: Any, *, users: dict[str, Any], models: dict[str, Any]) -> None:
    """Add monitoring demo data for the demo ``users`` and ``models`` (credit, diabetes)."""
