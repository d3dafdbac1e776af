"""Websocket close codes and reasons: the one list every socket type uses.

The chat websocket (`conversations.consumers`), GraphQL over websockets
(`api.graphql.consumers`, both protocols) and the ASGI middleware that answers
for them while a backing service is down all close with these, so a client
handles a code the same way whatever socket it holds (docs/clients.md). The
4xxx codes mirror the HTTP status a REST client would get for the same cause.
"""

from __future__ import annotations

from enum import IntEnum


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
