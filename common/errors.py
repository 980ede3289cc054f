"""The one domain error type.

Services raise ``DomainError``; the DRF exception handler turns it into
``{"error": {"code", "message", "details"}}`` with its HTTP status, and UI views
turn it into form errors. ``code`` is a stable machine-readable string.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.status = status

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, {self.message!r}, status={self.status})"


def not_found(what: str) -> DomainError:
    return DomainError("not_found", f"{what} was not found.", status=404)


def forbidden(action: str, what: str) -> DomainError:
    return DomainError(
        "permission_denied",
        f"You may see {what} but you are not allowed to {action} it.",
        details={"action": action},
        status=403,
    )


def conflict(code: str, message: str, **details: Any) -> DomainError:
    return DomainError(code, message, details=details, status=409)
