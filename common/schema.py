"""OpenAPI extensions (loaded by CommonConfig.ready) and the error shape for schemas."""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers


class ModelGateTokenScheme(KnoxTokenScheme):
    target_class = "common.authentication.TokenAuthentication"
    name = "tokenAuth"


ERROR = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
            },
        )
    },
)
_MEANINGS = {
    400: "Bad input; details name the field.",
    403: "Visible, but the action is not allowed.",
    404: "Not found, or not visible to you.",
    409: "Conflicts with the current state (details say which).",
}


def error_responses(*statuses: int) -> dict[int, Any]:
    """``{"error": {"code", "message", "details"}}`` responses for ``extend_schema``."""
    return {s: OpenApiResponse(ERROR, description=_MEANINGS.get(s, "")) for s in statuses}
