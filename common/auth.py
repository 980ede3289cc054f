"""API token issuance: hashed, expiring knox tokens tied to a user."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from knox.models import AuthToken
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.audit import audit_record
from common.errors import DomainError


def token_issue(
    *, user: Any, ttl: timedelta | None = None, reason: str = "login"
) -> tuple[str, Any]:
    """Create a token for ``user``; only its hash is stored. Returns (token, expiry)."""
    instance, token = AuthToken.objects.create(
        user=user, expiry=ttl or settings.REST_KNOX["TOKEN_TTL"]
    )
    audit_record(
        actor=user,
        action="auth.token.issued",
        object_type="knox.authtoken",
        object_id=instance.token_key,
        object_repr=f"token {instance.token_key}… for {user.get_username()}",
        after={"expiry": instance.expiry, "reason": reason},
    )
    return token, instance.expiry


def token_purge_expired() -> int:
    """Delete expired tokens (their hashes are useless once expired)."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted


class _Credentials(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)


class TokenLoginView(APIView):
    """Exchange a username and password for an API token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=_Credentials,
        responses=inline_serializer(
            "TokenResponse",
            {"token": serializers.CharField(), "expiry": serializers.DateTimeField()},
        ),
        auth=[],
    )
    def post(self, request: Request) -> Response:
        credentials = _Credentials(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(
            request=request._request,
            username=credentials.validated_data["username"],
            password=credentials.validated_data["password"],
        )
        if getattr(request._request, "axes_locked_out", False):
            raise DomainError(
                "locked_out",
                "Too many failed logins for this account; try again later.",
                status=429,
            )
        if user is None or not user.is_active:
            raise DomainError("invalid_credentials", "Wrong username or password.", status=400)
        from django.db import transaction

        with transaction.atomic():
            token, expiry = token_issue(user=user)
        return Response({"token": token, "expiry": expiry})
