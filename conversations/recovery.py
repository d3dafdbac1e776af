"""Find turns left `streaming` by a dead worker and end them as `interrupted`.

Each process runs `recovery_loop` in the background (started by the ASGI
lifespan): once at startup, then every CONFAB_TURN_STALE_SECONDS / 2. A turn
is stale when its heartbeat is older than CONFAB_TURN_STALE_SECONDS; live
turns heartbeat every CONFAB_TURN_HEARTBEAT_SECONDS. `manage.py recover_turns`
runs the same sweep by hand.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from conversations import services

logger = logging.getLogger(__name__)


def recover_once(stale_after: float | None = None) -> int:
    stale = settings.CONFAB_TURN_STALE_SECONDS if stale_after is None else stale_after
    ended = services.recover_interrupted_turns(stale_after=stale)
    if ended:
        logger.warning("Ended %d interrupted turn message(s).", ended)
    return ended


async def recovery_loop() -> None:
    """Sweep for interrupted turns forever (until cancelled at shutdown)."""
    interval = max(1.0, settings.CONFAB_TURN_STALE_SECONDS / 2)
    while True:
        try:
            await sync_to_async(_sweep, thread_sensitive=False)()
        except Exception:
            logger.warning("Turn recovery sweep failed; will retry.", exc_info=True)
        await asyncio.sleep(interval)


def _sweep() -> None:
    close_old_connections()
    try:
        recover_once()
    finally:
        close_old_connections()
