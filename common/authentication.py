"""DRF authentication classes (kept apart from views: DRF imports them at startup)."""

from __future__ import annotations

from hmac import compare_digest
from typing import Any

from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox tokens in one query per request.

    Knox's own class also walks all of the user's other tokens on every request
    to delete expired ones; here an expired token is simply refused and
    ``token_purge_expired`` (beat, daily) deletes expired rows.
    """

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        text = token.decode("utf-8", errors="replace")
        digest = hash_token(text)
        candidates = AuthToken.objects.filter(
            token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH]
        ).select_related("user")
        for auth_token in candidates:
            if compare_digest(digest, auth_token.digest):
                if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                    raise exceptions.AuthenticationFailed("Token expired.")
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed("Invalid token.")
