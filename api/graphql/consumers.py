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

Both protocols: a socket that has not authenticated within
CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS is closed 4408, and until it does it
counts against its address (CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS; one more:
close 4429). A revoked, expired or deactivated token closes its sockets 4401
(accounts.revocation), and a socket over its frame budget closes 4429. Slots,
timeouts and the credential are the shared `SocketLifecycle`'s.
"""

from __future__ import annotations

import asyncio
import json
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

from accounts.authentication import authenticate_credential
from api.graphql.context import GraphQLContext
from api.graphql.schema import schema
from api.graphql.sizes import (
    decode_json,
    document_error,
    document_too_large,
    max_document_chars,
)
from conversations import close_codes
from conversations.close_codes import Close
from conversations.socket_lifecycle import SocketLifecycle
from core.errors import ApplicationError, NotAuthenticated, ServiceUnavailable

# Client frames that start work: the token is re-checked before each.
WORK_FRAMES = {"subscribe", "start"}


def _frame_type(text: str) -> Any:
    try:
        message = decode_json(text)
    except ValueError:
        return None
    return message.get("type") if isinstance(message, dict) else None


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


def connection_init_seconds() -> float:
    return float(
        getattr(settings, "CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS", DEFAULT_CONNECTION_INIT_SECONDS)
    )


class GraphQLWebsocketConsumer(SocketLifecycle, GraphQLWSConsumer):
    """strawberry's Channels consumer with Confab's authentication and limits."""

    def __init__(self) -> None:
        super().__init__(
            schema=schema,
            allowed_origins=list(settings.CONFAB_WS_ALLOWED_ORIGINS),
            max_subscriptions_per_connection=settings.CONFAB_GRAPHQL_MAX_SUBSCRIPTIONS,
            connection_init_wait_timeout=timedelta(seconds=connection_init_seconds()),
        )

    async def get_context(self, request: Any, response: Any) -> GraphQLContext:
        return GraphQLContext(request=request, response=response, ws=request, user=AnonymousUser())

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        credential = _credential(context.connection_params)
        token = None
        if credential is None:
            user = self.scope.get("user") or AnonymousUser()
            token = self.scope.get("auth_token")
        elif isinstance(credential, str):
            try:
                user, token = await authenticate_credential(credential)
            except (OperationalError, InterfaceError):
                # Not a bad credential: say "unavailable, retry" (strawberry would
                # otherwise leave the socket hanging without an answer).
                await self._refuse(
                    Close.UNAVAILABLE, close_codes.DATABASE_UNAVAILABLE, ServiceUnavailable
                )
        else:
            user = AnonymousUser()
        if not getattr(user, "is_authenticated", False):
            raise ConnectionRejectionError(
                {"code": NotAuthenticated.code, "message": NotAuthenticated.default_detail}
            )
        try:
            counted = await self.admit_user(user, token)
        except RedisError:
            await self._refuse(Close.UNAVAILABLE, close_codes.LIVE_UNAVAILABLE, ServiceUnavailable)
        if not counted:
            # One budget with the chat websocket: CONFAB_WS_MAX_PER_USER.
            await self._refuse(Close.TOO_MANY, close_codes.TOO_MANY_SOCKETS, TooManyWebsockets)
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
        if not await self.count_unauthenticated():
            # Too many sockets from this address that have not authenticated yet.
            await self.accept(subprotocol=await self.pick_websocket_subprotocol(self))
            await self.close(code=Close.TOO_MANY, reason=close_codes.TOO_MANY_UNAUTHENTICATED)
            return
        self.background.append(asyncio.ensure_future(self._close_without_init()))
        if await self.pick_websocket_subprotocol(self) == GRAPHQL_TRANSPORT_WS_PROTOCOL:
            # graphql-transport-ws clients keep a socket alive with `ping` (or by
            # answering the server's pings); legacy graphql-ws has no client
            # keep-alive, so its sockets are not timed out once initialised.
            self.start_idle_watch()
        await super().connect()
        self.track()

    async def disconnect(self, code: int) -> None:
        await self.lifecycle_end()
        if self.run_task is not None:
            await super().disconnect(code)

    async def _credential_or_outage(self) -> bool:
        """`credential_still_valid`, except while the database is unreachable: then the
        operation goes on to get its own SERVICE_UNAVAILABLE (it needs the database too)
        instead of the socket closing 4503."""
        try:
            return await self.credential_still_valid()
        except (OperationalError, InterfaceError):
            return True

    async def _close_without_init(self) -> None:
        """Close 4408 a socket of either protocol that has not authenticated (an accepted
        connection_init) within CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS. strawberry times
        out graphql-transport-ws alone; legacy graphql-ws sockets stayed open for ever."""
        await asyncio.sleep(connection_init_seconds())
        if self.counted_user_id is None:
            await self.close(code=Close.IDLE, reason=close_codes.INIT_TIMEOUT)

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not await self.spend_frame():
            return
        if text_data is not None:
            if _frame_too_large(text_data):
                await self.close(code=Close.MESSAGE_TOO_BIG)
                return
            if (
                self.auth_token_id is not None
                and _frame_type(text_data) in WORK_FRAMES
                and not await self._credential_or_outage()
            ):
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
            if message.get("type") not in WORK_FRAMES or not document_too_large(
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
