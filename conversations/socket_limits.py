"""Open websockets per user and unauthenticated ones per address, across processes.

- CONFAB_WS_MAX_PER_USER: the chat consumer and the GraphQL consumer draw on one
  budget per user.
- CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS: a GraphQL socket is open before it
  authenticates (at connection_init); until then it counts against its client
  address, so one address cannot hold thousands of sockets that belong to nobody.

Counts live in the cache (Redis in production, so across every process). A count
is kept for SOCKET_COUNT_TTL after the last change, so a process that died with
sockets open does not lock its users out for good.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches

from core.cache import aadd_to_count

SOCKET_COUNT_TTL = 3600


def socket_key(user_id: int) -> str:
    return f"confab:ws:user:{user_id}"


def address_key(address: str) -> str:
    return f"confab:ws:anon:{address}"


async def _acquire(key: str, limit: int) -> bool:
    # One round trip: count, keep for the TTL, refuse past the limit (core.cache).
    count = await aadd_to_count(caches["default"], key, 1, ttl=SOCKET_COUNT_TTL, limit=limit)
    return count is not None and count >= 0


async def _release(key: str) -> None:
    await aadd_to_count(caches["default"], key, -1)


async def acquire(user_id: int) -> bool:
    """Count one more open socket for the user; False (and not counted) past the limit."""
    return await _acquire(socket_key(user_id), settings.CONFAB_WS_MAX_PER_USER)


async def release(user_id: int) -> None:
    """Count one socket of the user less (after `acquire` returned True)."""
    await _release(socket_key(user_id))


async def acquire_unauthenticated(address: str) -> bool:
    """Count one more not-yet-authenticated socket from `address`; False past the limit."""
    return await _acquire(address_key(address), settings.CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS)


async def release_unauthenticated(address: str) -> None:
    await _release(address_key(address))
