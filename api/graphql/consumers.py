"""GraphQL over websockets at `/graphql/`: graphql-transport-ws and legacy graphql-ws.

Authentication, in this order: the `connection_init` payload
`{"authorization": "Bearer <token>"}` if given, else the handshake's
`Authorization` header or `?token=` (accounts.authentication.TokenAuthMiddleware). Without a
valid token the connection is refused at `connection_init` (graphql-transport-ws:
close 4403 Forbidden; graphql-ws: `connection_error`). Browser pages must come
from CONFAB_WS_ALLOWED_ORIGINS (or the same origin). At most
CONFAB_GRAPHQL_MAX_SUBSCRIPTIONS operations run per connection; frames over
CONFAB_WS_MAX_FRAME_BYTES close the socket (1009), and documents over
CONFAB_GRAPHQL_MAX_DOCUMENT_BYTES get an `error` for their operation.
A user has at most CONFAB_WS_MAX_PER_USER open websockets, chat and GraphQL
together (one more: close 4429); a graphql-transport-ws socket without a client
frame for CONFAB_WS_IDLE_TIMEOUT is closed 4408 (clients `ping`). While the
database or the channel layer is unreachable, connection_init is answered with
close 4503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError
from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from accounts.authentication import authenticate_token
from api.graphql.context import GraphQLContext
from api.graphql.schema import schema
from api.graphql.sizes import (
    decode_json,
    document_error,
    document_too_large,
    max_document_chars,
)
from api.middleware import CLOSE_UNAVAILABLE, UNAVAILABLE_LIVE
from conversations import live, socket_limits
from core.errors import ApplicationError, NotAuthenticated, ServiceUnavailable

CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_IDLE = 4408
CLOSE_TOO_MANY = 4429


class TooManyWebsockets(ApplicationError):
    code = "TOO_MANY_CONNECTIONS"
    type = "rate_limited"
    status = 429
    default_detail = "Too many open websockets for this user."


DEFAULT_CONNECTION_INIT_SECONDS = 10.0


def _credential(params: dict[str, Any] | None) -> Any:
    """The `authorization` of a connection_init payload (None when absent)."""
    if not params:
        return None
    return params.get("authorization", params.get("Authorization"))


def _frame_too_large(text: str) -> bool:
    limit = settings.CONFAB_WS_MAX_FRAME_BYTES
    # UTF-8 takes at most 4 bytes a character: encode only when it could matter.
    return len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit)


class GraphQLWebsocketConsumer(GraphQLWSConsumer):
    """strawberry's Channels consumer with Confab's authentication and limits."""

    def __init__(self) -> None:
        super().__init__(
            schema=schema,
            allowed_origins=list(settings.CONFAB_WS_ALLOWED_ORIGINS),
            max_subscriptions_per_connection=settings.CONFAB_GRAPHQL_MAX_SUBSCRIPTIONS,
            connection_init_wait_timeout=timedelta(
                seconds=getattr(
                    settings,
                    "CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS",
                    DEFAULT_CONNECTION_INIT_SECONDS,
                )
            ),
        )

    async def get_context(self, request: Any, response: Any) -> GraphQLContext:
        return GraphQLContext(request=request, response=response, ws=request, user=AnonymousUser())

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        credential = _credential(context.connection_params)
        if credential is None:
            user = self.scope.get("user") or AnonymousUser()
        elif isinstance(credential, str):
            try:
                user = await authenticate_token(credential)
            except (OperationalError, InterfaceError):
                # Not a bad credential: say "unavailable, retry" (strawberry would
                # otherwise leave the socket hanging without an answer).
                await self._refuse(CLOSE_UNAVAILABLE, "Database unavailable", ServiceUnavailable)
        else:
            user = AnonymousUser()
        if not getattr(user, "is_authenticated", False):
            raise ConnectionRejectionError(
                {"code": NotAuthenticated.code, "message": NotAuthenticated.default_detail}
            )
        try:
            counted = await socket_limits.acquire(user.pk)
        except RedisError:
            await self._refuse(CLOSE_UNAVAILABLE, UNAVAILABLE_LIVE, ServiceUnavailable)
        if not counted:
            # One budget with the chat websocket: CONFAB_WS_MAX_PER_USER.
            await self._refuse(CLOSE_TOO_MANY, "Too many open websockets", TooManyWebsockets)
        self.counted_user_id = user.pk
        context.user = user
        return UNSET

    async def _refuse(self, code: int, reason: str, error: type[ApplicationError]) -> NoReturn:
        """Refuse a connection_init: graphql-transport-ws closes with `code` and `reason`
        (strawberry's own 4403 close that follows is then a no-op); legacy graphql-ws
        gets a `connection_error` with the error's code."""
        if await self.pick_websocket_subprotocol(self) == GRAPHQL_TRANSPORT_WS_PROTOCOL:
            await self.close(code=code, reason=reason)
        raise ConnectionRejectionError({"code": error.code, "message": error.default_detail})

    async def connect(self) -> None:
        self.counted_user_id: int | None = None
        self.last_activity = time.monotonic()
        self.idle_task = asyncio.ensure_future(self._close_when_idle())
        await super().connect()
        live.register(self)

    async def disconnect(self, code: int) -> None:
        live.unregister(self)
        if getattr(self, "idle_task", None) is not None:
            self.idle_task.cancel()
        if getattr(self, "counted_user_id", None) is not None:
            with contextlib.suppress(RedisError):
                await socket_limits.release(self.counted_user_id)
            self.counted_user_id = None
        await super().disconnect(code)

    async def _close_when_idle(self) -> None:
        """Close 4408 after CONFAB_WS_IDLE_TIMEOUT without a client frame.

        graphql-transport-ws clients keep a socket alive with `ping` (or by answering
        the server's pings); legacy graphql-ws has no client keep-alive, so its
        sockets are not timed out.
        """
        if await self.pick_websocket_subprotocol(self) != GRAPHQL_TRANSPORT_WS_PROTOCOL:
            return
        while True:
            timeout = settings.CONFAB_WS_IDLE_TIMEOUT
            remaining = timeout - (time.monotonic() - self.last_activity)
            if remaining <= 0:
                await self.close(code=CLOSE_IDLE, reason="Idle timeout")
                return
            await asyncio.sleep(remaining)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close once: the first close code is the one the client sees."""
        if getattr(self, "_close_sent", False):
            return
        self._close_sent = True
        await super().close(code=code, reason=reason)

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_activity = time.monotonic()
        if text_data is not None:
            if _frame_too_large(text_data):
                await self.close(code=CLOSE_MESSAGE_TOO_BIG)
                return
            if len(text_data) > max_document_chars() and await self._refuse_large_document(
                text_data
            ):
                return
        await super().receive(text_data=text_data, bytes_data=bytes_data)

    async def _refuse_large_document(self, text_data: str) -> bool:
        """Answer a subscribe/start whose document is too long with an `error`; True if so."""
        try:
            message = decode_json(text_data)
            payload = message.get("payload") or {}
            if message.get("type") not in ("subscribe", "start") or not document_too_large(
                payload.get("query")
            ):
                return False
        except (ValueError, AttributeError):
            return False  # the protocol handler answers malformed frames
        transport_ws = await self.pick_websocket_subprotocol(self) == GRAPHQL_TRANSPORT_WS_PROTOCOL
        error = document_error()
        await self.send(
            json.dumps(
                {
                    "id": message.get("id"),
                    "type": "error",
                    "payload": [error] if transport_ws else error,
                }
            )
        )
        return True
