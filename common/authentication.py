"""DRF authentication classes (kept apart from views: DRF imports them at startup)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework import exceptions


@dataclass(frozen=True)
class Rider:
    """Extra columns read by the token statement, for a view's hot path.

    ``columns`` may refer to the user row as ``u`` (e.g. ``u.id``) and to
    tables added by ``joins``; ``params`` are the placeholders' values in the
    order they appear in ``columns`` then ``joins``. Both strings must be
    constant (built from metadata), so that the whole statement stays one
    prepared statement per process. The extra values are left on the request
    as ``request.auth_rider`` for the view to judge; authentication itself
    never depends on them.
    """

    columns: str
    joins: str
    params: tuple[Any, ...]


@functools.cache
def _lookup(alias: str, columns: str = "", joins: str = "") -> tuple[str, list[Any], list[Any]]:
    """One constant statement: a token's digest and expiry with its user's row.

    Every API request runs it, so it is built once per process instead of
    being compiled by the ORM each time; each column goes through the same
    converters the ORM would apply (SQLite returns datetimes as text). A
    ``Rider``'s columns and joins ride along, unconverted, after them.
    """
    connection = connections[alias]
    quote = connection.ops.quote_name
    user_model = get_user_model()
    token_table, user_table = AuthToken._meta.db_table, user_model._meta.db_table
    token_fields = [AuthToken._meta.get_field("digest"), AuthToken._meta.get_field("expiry")]
    user_fields = list(user_model._meta.concrete_fields)
    selected = [f"t.{quote(f.column)}" for f in token_fields]
    selected += [f"u.{quote(f.column)}" for f in user_fields]
    if columns:
        selected.append(columns)
    user_pk = quote(user_model._meta.pk.column)
    sql = (
        f"SELECT {', '.join(selected)} FROM {quote(token_table)} t "  # noqa: S608 - metadata names
        f"JOIN {quote(user_table)} u ON u.{user_pk} = t.{quote('user_id')} {joins} "
        f"WHERE t.{quote('token_key')} = %s"
    )
    converters = []
    for field, table in [(f, token_table) for f in token_fields] + [
        (f, user_table) for f in user_fields
    ]:
        column = field.get_col(table)
        converters.append(
            (column, connection.ops.get_db_converters(column) + field.get_db_converters(connection))
        )
    return sql, converters, user_fields


class TokenAuthentication(KnoxTokenAuthentication):
    """Knox tokens (stored as SHA-512 digests, expiring) in one query per request.

    Knox's own class also walks all of the user's other tokens on every request
    to delete expired ones; here an expired token is simply refused and
    ``token_purge_expired`` (beat, daily) deletes expired rows.

    A view may define ``auth_rider(request, **kwargs) -> Rider | None`` to have
    what it reads first fetched by the same statement (see registry's alias
    resolution); the values land on ``request.auth_rider``.
    """

    _rider: Rider | None = None

    def rider(self, request: Any) -> Rider | None:
        context = request.parser_context or {}
        view_rider = getattr(context.get("view"), "auth_rider", None)
        return None if view_rider is None else view_rider(request, **context.get("kwargs", {}))

    def authenticate(self, request: Any) -> tuple[Any, AuthToken] | None:
        self._rider = self.rider(request)
        found = super().authenticate(request)
        if found is not None and self._rider is not None:
            request.auth_rider = self._rider_values
        return found

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        text = token.decode("utf-8", errors="replace")
        digest = hash_token(text)
        alias = router.db_for_read(AuthToken)
        rider = self._rider
        if rider is None:
            sql, converters, user_fields = _lookup(alias)
            params: list[Any] = []
        else:
            sql, converters, user_fields = _lookup(alias, rider.columns, rider.joins)
            params = list(rider.params)
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, text[: CONSTANTS.TOKEN_KEY_LENGTH]])
            rows = cursor.fetchall()
        for row in rows:
            values = []
            for value, (column, convert) in zip(row, converters, strict=False):
                for converter in convert:
                    value = converter(value, column, connection)
                values.append(value)
            self._rider_values = tuple(row[len(converters) :])
            stored_digest, expiry, user_values = values[0], values[1], values[2:]
            if not compare_digest(digest, stored_digest):
                continue
            if expiry is not None and expiry < timezone.now():
                raise exceptions.AuthenticationFailed("Token expired.")
            user = get_user_model().from_db(alias, [f.attname for f in user_fields], user_values)
            auth_token = AuthToken(
                digest=stored_digest, token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH], expiry=expiry
            )
            auth_token.user = user
            return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed("Invalid token.")
