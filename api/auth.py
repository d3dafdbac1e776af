"""Bearer-token authentication shared by every surface.

REST and GraphQL over HTTP use `BearerTokenAuthentication` (DRF). Websockets
(the chat consumer and GraphQL subscriptions) use `TokenAuthMiddleware`, which
reads the `Authorization` header or a `?token=` query parameter, and
`authenticate_token` for graphql-transport-ws `connection_init` payloads.
Tokens are knox tokens: opaque, hashed at rest, expiring, revocable.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.signals import token_expired
from rest_framework import exceptions

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
    """knox's credential check, expiring only the presented token.

    knox's own `_cleanup_token` loads every token of the user on each request to
    delete the expired ones: a query per request that grows with the user's
    devices. Expired tokens of other devices are deleted at sign-in instead
    (`api.accounts.issue_token`).
    """

    def _cleanup_token(self, auth_token: Any) -> bool:
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True


@database_sync_to_async
def authenticate_token(value: str | None) -> Any:
    """The user for `Bearer <token>`, `Token <token>` or a bare token; AnonymousUser otherwise."""
    if not value or not isinstance(value, str):
        return AnonymousUser()
    parts = value.encode("latin-1", "replace").split()
    if len(parts) == 2 and parts[0].lower() in ACCEPTED_PREFIXES:
        token = parts[1]
    elif len(parts) == 1:
        token = parts[0]
    else:
        return AnonymousUser()
    try:
        user, _ = authenticate_raw_token(token)
    except exceptions.AuthenticationFailed:
        return AnonymousUser()
    return user


class TokenAuthMiddleware(BaseMiddleware):
    """Channels middleware: `scope["user"]` from `Authorization` or `?token=`."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            scope = dict(scope)
            headers = dict(scope.get("headers") or [])
            value = headers.get(b"authorization", b"").decode("latin-1")
            if not value:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                value = (query.get("token") or [""])[0]
            if value:
                scope["user"] = await authenticate_token(value)
            else:
                scope.setdefault("user", AnonymousUser())
        return await super().__call__(scope, receive, send)
