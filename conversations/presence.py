"""Who follows a conversation live right now, across processes.

A live socket following a conversation (the chat websocket, a GraphQL
`conversationEvents` subscription, an SSE stream) counts itself here while it is open,
refreshing its count before FOLLOW_TTL runs out; a push notification is only worth
sending when nobody follows (`conversations.notifications`). Counts live in the cache
(Redis in production, so every process sees them); a process that died with sockets
open leaves its counts to expire after FOLLOW_TTL.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.cache import cache, caches

from core.cache import aadd_to_count

FOLLOW_TTL = 120.0
REFRESH_SECONDS = FOLLOW_TTL / 3


def _touch_sync(key: str, ttl: float) -> None:
    caches["default"].touch(key, ttl)


_touch = sync_to_async(_touch_sync, thread_sensitive=False)


def follow_key(conversation_id: int) -> str:
    return f"confab:follow:{conversation_id}"


async def follow(conversation_id: int) -> None:
    """Count one more live follower of the conversation (one round trip, core.cache)."""
    await aadd_to_count(caches["default"], follow_key(conversation_id), 1, ttl=int(FOLLOW_TTL))


async def refresh(conversation_id: int) -> None:
    """Keep a follower's count alive (call every REFRESH_SECONDS while following)."""
    # Not `cache.atouch`: that queues on the process's one sync thread, and 10,000 open
    # sockets refresh 250 times a second (see core.cache.aadd_to_count).
    await _touch(follow_key(conversation_id), FOLLOW_TTL)


async def unfollow(conversation_id: int) -> None:
    """Count one live follower less (after `follow`)."""
    await aadd_to_count(caches["default"], follow_key(conversation_id), -1)


def is_followed(conversation_id: int) -> bool:
    """Whether some live socket follows the conversation (an unreachable cache: assume
    nobody does, so a push is sent rather than lost)."""
    try:
        return (cache.get(follow_key(conversation_id)) or 0) > 0
    except Exception:  # noqa: BLE001 - the cache is best effort here
        return False
