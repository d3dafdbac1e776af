"""Bearer-token authentication shared by every surface.

REST and GraphQL over HTTP use `BearerTokenAuthentication` (DRF). Websockets
(the chat consumer and GraphQL subscriptions) use `TokenAuthMiddleware`, which
reads the `Authorization` header or a `?token=` query parameter, and
`authenticate_credential` for graphql-transport-ws `connection_init` payloads.
Tokens are knox tokens: opaque, hashed at rest, expiring, revocable.
"""

from __future__ import annotations

import binascii
import functools
from datetime import timedelta
from hmac import compare_digest
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import connections, router
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from core.rows import RowLoader, load_timestamps_in_c

ACCEPTED_PREFIXES = {b"bearer", b"token"}
MAX_TOKEN_LENGTH = 200


class BearerTokenAuthentication(TokenAuthentication):
    """knox authentication that accepts `Authorization: Bearer <token>` and `Token <token>`."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        return authenticate_header_value(header.encode("latin-1", "replace"))

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"


def split_authorization(value: bytes) -> bytes | None:
    """The credential of an `Authorization` value with an accepted scheme, else None."""
    parts = value.split()
    if not parts or parts[0].lower() not in ACCEPTED_PREFIXES:
        return None
    if len(parts) != 2 or len(parts[1]) > MAX_TOKEN_LENGTH:
        raise exceptions.AuthenticationFailed("Invalid token header.")
    return parts[1]


def authenticate_header_value(value: bytes) -> tuple[Any, Any] | None:
    token = split_authorization(value)
    if token is None:
        return None
    return authenticate_raw_token(token)


def authenticate_raw_token(token: bytes) -> tuple[Any, Any]:
    """(user, token) for a raw token; raises AuthenticationFailed when invalid or expired."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise exceptions.AuthenticationFailed("Invalid token.")
    try:
        token.decode("ascii")
    except UnicodeDecodeError:
        raise exceptions.AuthenticationFailed("Invalid token.") from None
    return _PresentedTokenAuthentication().authenticate_credentials(token)


class _PresentedTokenAuthentication(TokenAuthentication):
    """knox's credential check with a lighter lookup, expiring only the presented token.

    knox's own query (`select_related("user")` compiled per request) cost five
    times the database's time, and its `_cleanup_token` loaded every token of the
    user on each request to delete the expired ones: a query that grows with the
    user's devices. Here the lookup is one prepared statement; expired tokens of
    other devices are deleted at sign-in instead (`accounts.services.issue_token`).
    """

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        # knox's loop (knox.auth.TokenAuthentication) over `tokens_with_key`.
        invalid = exceptions.AuthenticationFailed("Invalid token.")
        raw = token.decode("utf-8")
        for auth_token in tokens_with_key(raw[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(raw)
            except (TypeError, binascii.Error):
                raise invalid from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                user, token = self.validate_user(auth_token)
                note_use(token)
                return user, token
        raise invalid

    def _cleanup_token(self, auth_token: Any) -> bool:
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True


# How stale a device's "last used" may be: one write per token a minute at most, not
# one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def note_use(token: Any) -> None:
    """Record that `token` just authenticated a request (to LAST_USED_RESOLUTION)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        type(token).objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


@functools.cache
def _token_lookup() -> tuple[str, RowLoader, RowLoader]:
    tokens, users = RowLoader(get_token_model()), RowLoader(get_user_model())
    token_table = get_token_model()._meta.db_table
    user_table = get_user_model()._meta.db_table
    sql = (
        f'SELECT {tokens.columns()}, {users.columns()} FROM "{token_table}" '
        f'INNER JOIN "{user_table}" ON "{user_table}"."id" = "{token_table}"."user_id" '
        f'WHERE "{token_table}"."token_key" = %s'
    )
    return sql, tokens, users


def tokens_with_key(token_key: str) -> list[Any]:
    """The tokens whose key (the first characters of the raw token) is `token_key`,
    with their user: knox's `filter(token_key=...).select_related("user")`."""
    sql, tokens, users = _token_lookup()
    token_model = tokens.model
    alias = router.db_for_read(token_model)
    with connections[alias].cursor() as cursor:
        load_timestamps_in_c(cursor)
        cursor.execute(sql, [token_key])
        rows = cursor.fetchall()
    found = []
    for row in rows:
        auth_token = tokens.instance(alias, row)
        token_model.user.field.set_cached_value(
            auth_token, users.instance(alias, row, tokens.width)
        )
        found.append(auth_token)
    return found


def _authenticate_value(value: str | None) -> tuple[Any, Any]:
    """(user, token) for `Bearer <token>`, `Token <token>` or a bare token;
    (AnonymousUser, None) otherwise."""
    if not value or not isinstance(value, str):
        return AnonymousUser(), None
    parts = value.encode("latin-1", "replace").split()
    if len(parts) == 2 and parts[0].lower() in ACCEPTED_PREFIXES:
        token = parts[1]
    elif len(parts) == 1:
        token = parts[0]
    else:
        return AnonymousUser(), None
    try:
        return authenticate_raw_token(token)
    except exceptions.AuthenticationFailed:
        return AnonymousUser(), None


@database_sync_to_async
def authenticate_credential(value: str | None) -> tuple[Any, Any]:
    """(user, token row) for `Bearer <token>`, `Token <token>` or a bare token;
    (AnonymousUser, None) otherwise. A websocket keeps the token to close when it is
    revoked (accounts.revocation)."""
    return _authenticate_value(value)


class TokenAuthMiddleware(BaseMiddleware):
    """Channels middleware: `scope["user"]` (and `scope["auth_token"]`, the token row)
    from `Authorization` or `?token=`."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            scope = dict(scope)
            headers = dict(scope.get("headers") or [])
            value = headers.get(b"authorization", b"").decode("latin-1")
            if not value:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                value = (query.get("token") or [""])[0]
            if value:
                scope["user"], scope["auth_token"] = await authenticate_credential(value)
            else:
                scope.setdefault("user", AnonymousUser())
        return await super().__call__(scope, receive, send)
