"""Where the turn engine's database work runs: a small thread pool of its own.

Django's async ORM API and `sync_to_async` in its default (thread-sensitive) mode
run every call of a process on one thread. With hundreds of turns starting at
once, each start's half-dozen queries queued behind every other turn's: the start
of the last turn of a burst waited for all the others (bench/BENCHMARKS.md,
"Concurrent streaming"). The engine's service calls and reads therefore run here,
several at a time.

A dedicated executor rather than `sync_to_async(thread_sensitive=False)` (the event
loop's default executor), for two reasons:
- its size, CONFAB_TURN_DB_THREADS, bounds how many pooled database connections turn
  work holds at once (a thread holds one only during a call), below the pool's
  `max_size`; the default executor grows with the CPU count (min(32, CPUs + 4))
  and could take the whole pool from requests;
- the default executor stays free for the batched heartbeats and partial saves
  (`ticks`) and the recovery sweep, so they never queue behind a burst of turn
  starts: a live turn must not look dead to another process.

Each call runs as Channels' `database_sync_to_async` does: stale connections are
closed before it and the connection goes back to the pool after it, and a service's
transaction begins and ends inside its one call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.conf import settings

P = ParamSpec("P")
R = TypeVar("R")


_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def turn_db_threads() -> int:
    """CONFAB_TURN_DB_THREADS (default 8): the size of the pool, read when it is created."""
    return max(1, int(settings.CONFAB_TURN_DB_THREADS))


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=turn_db_threads(), thread_name_prefix="confab-turn-db"
            )
        return _executor


def in_turn_thread(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`fn` as a coroutine function that runs in the turn engine's thread pool."""
    return database_sync_to_async(fn, thread_sensitive=False, executor=_get_executor())
