"""Middleware of the API surfaces: while a backing service is unreachable, answer clearly.

- HTTP (`DatabaseUnavailableMiddleware`, Django): 503 with `Retry-After`, in the
  REST error shape, or in the GraphQL transport-error shape under `/graphql/`.
- Websockets (`ServiceUnavailableWebsocketMiddleware`, ASGI): a handshake or a
  consumer that fails on the database or on the channel layer (Redis) closes
  with 4503 and a reason instead of an HTTP 500 or an abnormal closure.

Broken connections are closed so the next request reconnects once the
database is back.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError

from conversations.close_codes import DATABASE_UNAVAILABLE, LIVE_UNAVAILABLE, Close, TrackedSend
from core.async_middleware import AsyncCapableMiddleware
from core.errors import DatabaseUnavailable
from core.middleware import error_response

logger = logging.getLogger(__name__)

# Raised when the server is unreachable or a connection broke (not for bad SQL).
DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def _close_broken_connections() -> None:
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()


class DatabaseUnavailableMiddleware(AsyncCapableMiddleware):
    """While the database is unreachable, answer 503 in the error shape, not 500.

    Async-capable: a sync-only middleware makes Django run the whole chain in a
    thread and hop back to the event loop for every async (adrf) view.
    """

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return await self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_DOWN):
            return None
        logger.warning("Database unavailable: %s", type(exception).__name__)
        _close_broken_connections()
        # In the shape of the surface the request is for (REST, or GraphQL's transport).
        response = error_response(request, DatabaseUnavailable())
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


class ServiceUnavailableWebsocketMiddleware:
    """ASGI: a websocket whose handshake or consumer fails on the database or the channel
    layer closes 4503 with a reason.

    Without it, a failure during the handshake (token lookup, ownership check,
    joining the channel layer) is an HTTP 500, and one in a consumer an abnormal
    closure (1006): clients cannot tell either from a bug. 4503 says
    "unavailable, retry" (like HTTP 503).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        tracked_send = TrackedSend(send)
        try:
            return await self.app(scope, receive, tracked_send)
        except (*DATABASE_DOWN, RedisError, OSError) as exc:
            # OSError: a connection to a backing service failed below the client library.
            reason = DATABASE_UNAVAILABLE if isinstance(exc, DATABASE_DOWN) else LIVE_UNAVAILABLE
            logger.warning("Websocket closed 4503: %s", reason, exc_info=True)
            await tracked_send.close(Close.UNAVAILABLE, reason)
            return None
