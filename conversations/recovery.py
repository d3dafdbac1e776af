"""Find turns left `streaming` by a dead worker and end them as `interrupted`.

Each process runs `recover_once` in the background (`conversations.background`):
once at startup, then every CONFAB_TURN_STALE_SECONDS / 2. A turn
is stale when its heartbeat is older than CONFAB_TURN_STALE_SECONDS; live
turns heartbeat every CONFAB_TURN_HEARTBEAT_SECONDS. `manage.py recover_turns`
runs the same sweep by hand.
"""

from __future__ import annotations

import logging

from django.conf import settings

from conversations import services

logger = logging.getLogger(__name__)


def recover_once(stale_after: float | None = None) -> int:
    stale = settings.CONFAB_TURN_STALE_SECONDS if stale_after is None else stale_after
    ended = services.recover_interrupted_turns(stale_after=stale)
    if ended:
        logger.warning("Ended %d interrupted turn message(s).", ended)
    return ended
