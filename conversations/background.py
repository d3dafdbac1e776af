"""The periodic jobs every server process runs (started by the ASGI lifespan).

- recovering turns whose worker died (`recovery.recover_once`), every
  CONFAB_TURN_STALE_SECONDS / 2 and at startup;
- compacting the changes feed (`sync.services.compact_changes`), hourly and at startup;
- sending due notifications (`notifications.delivery.deliver_due`), every second;
- beginning the next turn of conversations whose queued messages wait with no turn
  running (`turns.start_waiting_queues`: a process died between two queued turns, or
  was at capacity), every CONFAB_TURN_STALE_SECONDS / 2 and at startup;
- denying tool calls that waited for approval longer than CONFAB_TOOL_APPROVAL_TIMEOUT
  and resuming their turns (`turns.approval.expire_tool_calls`).

Each runs in a worker thread with its own database connection, one run at a time; a
failed run is logged and retried at the next interval. Running them in every process
is safe: each job is idempotent and takes the row locks it needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from conversations.notifications.delivery import deliver_due
from conversations.recovery import recover_once
from conversations.sync.services import compact_changes

logger = logging.getLogger(__name__)

COMPACTION_SECONDS = 3600.0
NOTIFY_SECONDS = 1.0


async def every(seconds: float, job: Callable[[], Any], *, what: str) -> None:
    """Run `job` now and then every `seconds`, forever (until cancelled at shutdown)."""
    while True:
        try:
            await sync_to_async(_with_fresh_connection, thread_sensitive=False)(job)
        except Exception:
            logger.warning("%s failed; will retry.", what, exc_info=True)
        await asyncio.sleep(seconds)


async def every_async(seconds: float, job: Callable[[], Any], *, what: str) -> None:
    """`every` for a coroutine job (one that starts turns on this process's loop)."""
    while True:
        try:
            await job()
        except Exception:
            logger.warning("%s failed; will retry.", what, exc_info=True)
        await asyncio.sleep(seconds)


def _with_fresh_connection(job: Callable[[], Any]) -> Any:
    close_old_connections()
    try:
        return job()
    finally:
        close_old_connections()


def jobs() -> list[Coroutine[Any, Any, None]]:
    """The coroutines of this process's periodic jobs."""
    return [
        every(
            max(1.0, settings.CONFAB_TURN_STALE_SECONDS / 2),
            recover_once,
            what="Turn recovery sweep",
        ),
        every(COMPACTION_SECONDS, compact_changes, what="Changes-feed compaction"),
        every(NOTIFY_SECONDS, deliver_due, what="Notification delivery"),
        every_async(
            max(1.0, settings.CONFAB_TURN_STALE_SECONDS / 2),
            _start_waiting_queues,
            what="Queued-turn sweep",
        ),
        every_async(_approval_sweep_seconds(), _expire_tool_calls, what="Tool approval timeouts"),
    ]


def _approval_sweep_seconds() -> float:
    from conversations.turns.approval import sweep_seconds

    return sweep_seconds()


async def _expire_tool_calls() -> int:
    from conversations.turns.approval import expire_tool_calls

    return await expire_tool_calls()


async def _start_waiting_queues() -> int:
    from conversations.turns import start_waiting_queues

    return await start_waiting_queues()
