"""The lifecycle every Confab websocket shares: one mixin, used by the chat consumer
(`conversations.consumers`) and GraphQL over websockets (`api.graphql.consumers`,
graphql-transport-ws and legacy graphql-ws).

What it owns, so no consumer writes it again:
- the per-user socket slot (CONFAB_WS_MAX_PER_USER, close 4429) and, for a socket
  that authenticates after opening (GraphQL's connection_init), the per-address
  slot of unauthenticated sockets (CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS);
- giving both back on *every* way a socket ends: a clean close, a client that
  vanished, a consumer that raised (which also gets a close frame, 1011, instead
  of a dropped connection), a server shutting down. Before, a frame that made the
  chat consumer raise skipped `disconnect`, and each such drop held a slot for the
  counter's TTL (an hour): 20 drops locked the user out of every websocket;
- the credential: the socket joins its token's group and closes 4401 when the token
  is revoked (`accounts.revocation`), re-checks it before each frame that does work,
  and is swept with every other socket of the process for expiry and deactivation
  (`conversations.live`);
- the idle timeout (CONFAB_WS_IDLE_TIMEOUT, close 4408) and the frame budget (a token
  bucket: CONFAB_WS_FRAME_RATE a second up to CONFAB_WS_FRAME_BURST; past it, close
  4429);
- closing once: the first close code is the one the client sees;
- presence: the conversations the socket follows live (`conversations.presence`),
  refreshed while it is open and let go when it ends, so no push notification is
  sent for a reply someone is watching.

Close codes are `conversations.close_codes.Close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

from accounts.revocation import REVOKED_MESSAGE_TYPE, token_group, token_is_valid
from conversations import close_codes, live, presence, socket_limits
from conversations.close_codes import Close, TrackedSend
from conversations.turns.threads import in_turn_thread

logger = logging.getLogger(__name__)

# Failures the ASGI middleware answers with 4503 (api.middleware): not re-mapped here.
# How long each step of giving a socket's holdings back may take: a Redis that hangs
# (or a layer being shut down with the process) must not keep a socket's end waiting.
CLEANUP_SECONDS = 2.0
SERVICE_DOWN = (OperationalError, InterfaceError, RedisError, OSError)


async def _bounded(step: Any) -> None:
    """Await one best-effort cleanup step for at most CLEANUP_SECONDS; failures are
    ignored (a count left behind expires with its key's TTL)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(step, CLEANUP_SECONDS)


class FrameBudget:
    """A token bucket of client frames: `rate` a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self, cost: float = 1.0) -> bool:
        """Spend `cost` tokens; False (nothing spent) when the bucket holds fewer."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class SocketLifecycle:
    """Mixin for a Channels websocket consumer; put it before the consumer class."""

    counted_user_id: int | None = None
    counted_address: str | None = None
    auth_token_id: Any = None

    def lifecycle_init(self) -> None:
        self.counted_user_id = None
        self.counted_address = None
        self.auth_token_id = None
        # Channel-layer groups this socket joined (its token's, its conversation's):
        # left when it ends, however it ends.
        self.joined_groups: list[str] = []
        # Timers of this socket (idle, connection_init): cancelled when it ends.
        self.background: list[asyncio.Future[None]] = []
        self.last_activity = time.monotonic()
        self.frame_budget = FrameBudget(
            settings.CONFAB_WS_FRAME_RATE, settings.CONFAB_WS_FRAME_BURST
        )
        self._close_sent = False
        self._ended = False
        self.followed: Counter[int] = Counter()
        self._refresher: asyncio.Future[None] | None = None

    # --- every way a socket ends ---------------------------------------------------

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        self.lifecycle_init()
        tracked_send = TrackedSend(send)
        try:
            return await super().__call__(scope, receive, tracked_send)  # type: ignore[misc]
        except SERVICE_DOWN:
            raise  # closed 4503 by api.middleware.ServiceUnavailableWebsocketMiddleware
        except Exception:
            # A bug must not drop the connection without a close frame (clients cannot
            # tell that from a network failure) nor keep the socket's slots.
            logger.exception("Websocket consumer failed: closing %d", Close.INTERNAL_ERROR)
            with contextlib.suppress(Exception):
                await tracked_send.close(Close.INTERNAL_ERROR, close_codes.INTERNAL_ERROR)
            return None
        finally:
            await self.lifecycle_end()

    async def lifecycle_end(self) -> None:
        """Give back everything the socket holds (idempotent: `disconnect` and the end of
        `__call__` both call it)."""
        if self._ended:
            return
        self._ended = True
        live.unregister(self)
        for task in self.background:
            task.cancel()
        layer = getattr(self, "channel_layer", None)
        for group in self.joined_groups if layer is not None else []:
            # The layer may be what failed (Redis down): leaving it is best effort.
            await _bounded(layer.group_discard(group, self.channel_name))
        self.joined_groups = []
        if self.counted_user_id is not None:
            user_id, self.counted_user_id = self.counted_user_id, None
            await _bounded(socket_limits.release(user_id))
        await self.uncount_unauthenticated()
        for conversation_id, count in list(self.followed.items()):
            for _ in range(count):
                await _bounded(presence.unfollow(conversation_id))
        self.followed.clear()

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close once: the first close code is the one the client sees."""
        if self._close_sent:
            return
        self._close_sent = True
        await super().close(code=code, reason=reason)  # type: ignore[misc]

    @property
    def closing(self) -> bool:
        """A close was sent: frames that still arrive are not served."""
        return self._close_sent

    # --- slots ---------------------------------------------------------------------

    async def admit_user(self, user: Any, token: Any = None) -> bool:
        """Take the user's socket slot and follow the token's revocation; False past
        CONFAB_WS_MAX_PER_USER (nothing taken)."""
        if not await socket_limits.acquire(user.pk):
            return False
        self.counted_user_id = user.pk
        if token is not None:
            self.auth_token_id = token.public_id
            await self.join_group(token_group(token.public_id))
        await self.uncount_unauthenticated()
        return True

    async def join_group(self, group: str) -> None:
        """Join a channel-layer group until the socket ends."""
        await self.channel_layer.group_add(group, self.channel_name)  # type: ignore[attr-defined]
        self.joined_groups.append(group)

    def client_address(self) -> str:
        client = self.scope.get("client")  # type: ignore[attr-defined]
        return str(client[0]) if client else "unknown"

    async def count_unauthenticated(self) -> bool:
        """Take a slot of the client address's unauthenticated sockets; False past the cap."""
        address = self.client_address()
        if not await socket_limits.acquire_unauthenticated(address):
            return False
        self.counted_address = address
        return True

    async def uncount_unauthenticated(self) -> None:
        if self.counted_address is not None:
            address, self.counted_address = self.counted_address, None
            await _bounded(socket_limits.release_unauthenticated(address))

    def track(self) -> None:
        """Register the open socket with this process (closed 4503 when the channel layer
        fails; swept for its credential)."""
        live.register(self)

    # --- presence ------------------------------------------------------------------

    async def follow_conversation(self, conversation_id: int) -> None:
        """Count this socket as following the conversation live until `unfollow_conversation`
        or the socket's end (best effort: an unreachable cache means a push is sent)."""
        try:
            await presence.follow(conversation_id)
        except Exception:
            logger.warning("Could not record a live follower", exc_info=True)
            return
        self.followed[conversation_id] += 1
        if self._refresher is None:
            self._refresher = asyncio.ensure_future(self._refresh_presence())
            self.background.append(self._refresher)

    async def unfollow_conversation(self, conversation_id: int) -> None:
        if self.followed[conversation_id] <= 0:
            return
        self.followed[conversation_id] -= 1
        if not self.followed[conversation_id]:
            del self.followed[conversation_id]
        with contextlib.suppress(Exception):
            await presence.unfollow(conversation_id)

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(presence.REFRESH_SECONDS)
            for conversation_id in list(self.followed):
                with contextlib.suppress(Exception):
                    await presence.refresh(conversation_id)

    # --- the credential ------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == REVOKED_MESSAGE_TYPE:
            await self.close_revoked()
            return
        await super().dispatch(message)  # type: ignore[misc]

    async def close_revoked(self) -> None:
        await self.close(code=Close.UNAUTHENTICATED, reason=close_codes.REVOKED)

    async def credential_still_valid(self) -> bool:
        """Before a frame that does work: is the token this socket was opened with still
        valid? (One indexed query; True for sockets opened without a token.) Closes 4401
        when not."""
        if self.closing:
            return False
        if self.auth_token_id is None:
            return True
        if await in_turn_thread(token_is_valid)(self.auth_token_id):
            return True
        await self.close_revoked()
        return False

    # --- activity ------------------------------------------------------------------

    def start_idle_watch(self) -> None:
        self.background.append(asyncio.ensure_future(self._watch_idle()))

    async def on_idle(self) -> None:
        await self.close(code=Close.IDLE, reason=close_codes.IDLE)

    async def _watch_idle(self) -> None:
        """Close 4408 after CONFAB_WS_IDLE_TIMEOUT without a client frame."""
        while True:
            timeout = settings.CONFAB_WS_IDLE_TIMEOUT
            remaining = timeout - (time.monotonic() - self.last_activity)
            if remaining <= 0:
                await self.on_idle()
                return
            await asyncio.sleep(remaining)

    async def spend_frame(self, cost: float = 1.0) -> bool:
        """Count a client frame: activity for the idle timeout, and `cost` of the frame
        budget. Past the budget the socket closes 4429 and the frame is not served."""
        self.last_activity = time.monotonic()
        if self.closing:
            return False
        if self.frame_budget.take(cost):
            return True
        await self.close(code=Close.TOO_MANY, reason=close_codes.TOO_MANY_FRAMES)
        return False
