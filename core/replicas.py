"""Reads from a PostgreSQL streaming replica, and every user still reads their own writes.

With `DATABASE_REPLICA_URL` set, settings add a `replica` database alias and this
module's router. Only the reads that are chosen for it go to the replica: history pages,
conversation search and the changes feed (their selectors wrap themselves in
`replica_reads(user_id)` or use `read_alias(user_id)`). Everything else, writes and the
reads of a write (the turn engine's window, locks, idempotency checks) stays on the
primary: a replica is always a little behind, and those reads must not be.

Read-your-writes: after each write of a user (`effects.write`, on commit) the primary's
WAL insert position is stored in the cache under the user (`remember_writes`). A routed
read of that user first asks the replica whether it has replayed that far
(`pg_last_wal_replay_lsn()`); if not, the read goes to the primary. A user without a
remembered write reads from the replica at once. The position is kept
`CONFAB_REPLICA_RYW_SECONDS` (600): a replica more than that behind serves that user
stale data, so alert on replica lag well below it (docs/deploy.md).

A replica that fails to answer is left alone for `CONFAB_REPLICA_RETRY_SECONDS` (5) in
this process, and reads go to the primary meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction

logger = logging.getLogger(__name__)

REPLICA = "replica"

_reading: ContextVar[str | None] = ContextVar("confab_replica_reading", default=None)
_down_until = 0.0
_down_lock = threading.Lock()


def configured() -> bool:
    return REPLICA in settings.DATABASES


def _key(user_id: int) -> str:
    return f"replica-ryw:{user_id}"


def read_alias(user_id: int | None) -> str:
    """The alias for a read of `user_id`'s data that may come from the replica: the replica
    when it answers and has replayed the user's last write, else the primary."""
    global _down_until
    if not configured() or user_id is None or time.monotonic() < _down_until:
        return DEFAULT_DB_ALIAS
    try:
        needed = cache.get(_key(user_id))
    except Exception:  # noqa: BLE001 - the cache down: the primary is always right
        logger.warning("Read-your-writes position unavailable; reading from the primary.")
        return DEFAULT_DB_ALIAS
    try:
        replica = connections[REPLICA]
        if needed is None:
            replica.ensure_connection()
            return REPLICA
        with replica.cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [needed])
            replayed = cursor.fetchone()[0]
    except Exception as error:  # noqa: BLE001 - any failure of the replica: use the primary
        with _down_lock:
            _down_until = time.monotonic() + settings.CONFAB_REPLICA_RETRY_SECONDS
        logger.warning(
            "Read replica unavailable (%s); reading from the primary for %s s.",
            type(error).__name__,
            settings.CONFAB_REPLICA_RETRY_SECONDS,
        )
        # Closing a broken connection may fail too.
        with contextlib.suppress(Exception):
            connections[REPLICA].close()
        return DEFAULT_DB_ALIAS
    # NULL (a "replica" that is a primary) counts as not replayed.
    return REPLICA if replayed else DEFAULT_DB_ALIAS


@contextmanager
def replica_reads(user_id: int | None) -> Iterator[str]:
    """Within this block, reads routed by Django (querysets without `.using()`, and
    `router.db_for_read`) go to `read_alias(user_id)`; yields that alias."""
    alias = read_alias(user_id)
    token = _reading.set(alias)
    try:
        yield alias
    finally:
        _reading.reset(token)


def remember_writes_on_commit(user_ids: Iterable[int]) -> None:
    """Inside a write: once it commits, remember the primary's WAL position for these
    users, so their next routed reads wait for the replica to replay it."""
    if not configured():
        return
    users = sorted(set(user_ids))
    if users:
        transaction.on_commit(lambda: remember_writes(users))


def remember_writes(user_ids: list[int]) -> None:
    """Store the primary's current WAL insert position (at or past every commit so far)
    as these users' read-your-writes position."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            lsn = cursor.fetchone()[0]
        cache.set_many(
            {_key(user_id): lsn for user_id in user_ids},
            timeout=settings.CONFAB_REPLICA_RYW_SECONDS,
        )
    except Exception:
        logger.exception("Could not remember a write's WAL position for read-your-writes.")


class ReplicaRouter:
    """Routes the reads inside `replica_reads` to the alias chosen there; all writes and
    every other read to the primary. Migrations run on the primary only (the replica
    replays them)."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return _reading.get()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None
