"""Websocket close codes and reasons: the one list every socket type uses.

The chat websocket (`conversations.consumers`), GraphQL over websockets
(`api.graphql.consumers`, both protocols) and the ASGI middleware that answers
for them while a backing service is down all close with these, so a client
handles a code the same way whatever socket it holds (docs/clients.md). The
4xxx codes mirror the HTTP status a REST client would get for the same cause.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Close(IntEnum):
    """Close codes a Confab websocket may end with (besides the protocol's own 1000/1002)."""

    #: The frame is larger than CONFAB_WS_MAX_FRAME_BYTES (RFC 6455 "message too big").
    MESSAGE_TOO_BIG = 1009
    #: An unexpected server error: the socket ends with a close frame, never a bare drop.
    INTERNAL_ERROR = 1011
    #: No valid token, or the token was revoked / expired / its user deactivated.
    UNAUTHENTICATED = 4401
    #: The conversation does not exist, is not the caller's, or was deleted.
    NOT_FOUND = 4404
    #: No client frame for CONFAB_WS_IDLE_TIMEOUT, or no connection_init in time.
    IDLE = 4408
    #: Too many sockets (per user or per address) or too many frames (the frame budget).
    TOO_MANY = 4429
    #: The database or the channel layer is unreachable: reconnect and resume later.
    UNAVAILABLE = 4503


# Reasons sent with the close frame (short: a close reason is at most 123 bytes).
REVOKED = "Credential revoked"
IDLE = "Idle timeout"
INIT_TIMEOUT = "Connection initialisation timeout"
TOO_MANY_SOCKETS = "Too many open websockets"
TOO_MANY_UNAUTHENTICATED = "Too many unauthenticated websockets from this address"
TOO_MANY_FRAMES = "Frame budget exceeded"
DATABASE_UNAVAILABLE = "Database unavailable"
LIVE_UNAVAILABLE = "Live updates unavailable"
LIVE_INTERRUPTED = "Live updates interrupted"
INTERNAL_ERROR = "Internal error"


class TrackedSend:
    """An ASGI `send` that remembers whether the socket was accepted or closed, so the
    code that wraps a consumer can still end it with a close frame after a failure."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.accepted = False
        self.closed = False

    async def __call__(self, message: dict) -> None:
        if message["type"] == "websocket.accept":
            self.accepted = True
        elif message["type"] in ("websocket.close", "websocket.http.response.start"):
            self.closed = True
        await self.send(message)

    async def close(self, code: int, reason: str) -> None:
        """Close with `code` unless already closed (accepting first: a close code can
        only be sent on an accepted socket)."""
        if self.closed:
            return
        if not self.accepted:
            await self({"type": "websocket.accept"})
        await self({"type": "websocket.close", "code": int(code), "reason": reason})
