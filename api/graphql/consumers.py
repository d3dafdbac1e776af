"""GraphQL over websockets at `/graphql/`: graphql-transport-ws and legacy graphql-ws.

Authentication, in this order: the `connection_init` payload
`{"authorization": "Bearer <token>"}` if given, else the handshake's
`Authorization` header or `?token=` (api.auth.TokenAuthMiddleware). Without a
valid token the connection is refused at `connection_init` (graphql-transport-ws:
close 4403 Forbidden; graphql-ws: `connection_error`). Browser pages must come
from CONFAB_WS_ALLOWED_ORIGINS (or the same origin). At most
CONFAB_GRAPHQL_MAX_SUBSCRIPTIONS operations run per connection; frames over
CONFAB_WS_MAX_FRAME_BYTES close the socket (1009), and documents over
CONFAB_GRAPHQL_MAX_DOCUMENT_BYTES get an `error` for their operation.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from strawberry.channels import GraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from api.auth import authenticate_token
from api.graphql.context import GraphQLContext
from api.graphql.limits import document_error, document_too_large, max_document_chars
from api.graphql.schema import schema
from conversations.errors import NotAuthenticated

CLOSE_MESSAGE_TOO_BIG = 1009
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
            user = await authenticate_token(credential)
        else:
            user = AnonymousUser()
        if not getattr(user, "is_authenticated", False):
            raise ConnectionRejectionError(
                {"code": NotAuthenticated.code, "message": NotAuthenticated.default_detail}
            )
        context.user = user
        return UNSET

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
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
            message = json.loads(text_data)
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
