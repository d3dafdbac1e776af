"""Open websockets per user, across processes: CONFAB_WS_MAX_PER_USER.

The chat consumer and the GraphQL consumer draw on one budget per user,
counted in the cache (Redis in production, so across every process). A count
is kept for SOCKET_COUNT_TTL after the last change, so a process that died
with sockets open does not lock its users out for good.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.core.cache import cache

SOCKET_COUNT_TTL = 3600


def socket_key(user_id: int) -> str:
    return f"confab:ws:user:{user_id}"


async def acquire(user_id: int) -> bool:
    """Count one more open socket for the user; False (and not counted) past the limit."""
    key = socket_key(user_id)
    await cache.aadd(key, 0, SOCKET_COUNT_TTL)
    count = await cache.aincr(key)
    await cache.atouch(key, SOCKET_COUNT_TTL)
    if count > settings.CONFAB_WS_MAX_PER_USER:
        await release(user_id)
        return False
    return True


async def release(user_id: int) -> None:
    """Count one socket of the user less (after `acquire` returned True)."""
    with contextlib.suppress(ValueError):
        await cache.adecr(socket_key(user_id))
