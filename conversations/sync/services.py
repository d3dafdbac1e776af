"""Writes of the changes feed: recording (inside a service's transaction) and compaction."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from conversations.sync.models import Change, SyncCounter

Change_ = tuple[int, str, int, int | None]  # (user id, kind, conversation id, message id)


def record_changes(*, changes: list[Change_]) -> None:
    """Number and store changes, inside the caller's transaction (`effects.write` calls it
    just before commit). On PostgreSQL each user's changes take one statement: the
    counter row is bumped (and stays locked until commit) and the changes inserted with
    their numbers, in one data-modifying CTE. SQLite serializes writers anyway
    (IMMEDIATE transactions) and has no such CTE: the counter and the insert are two."""
    by_user: dict[int, list[Change_]] = defaultdict(list)
    for change in changes:
        by_user[change[0]].append(change)
    now = timezone.now()
    for user_id, mine in by_user.items():
        if connection.vendor == "postgresql":
            _record_postgresql(user_id, mine, now)
        else:
            _record_portable(user_id, mine, now)


_COUNTER = SyncCounter._meta.db_table
_CHANGE = Change._meta.db_table


def _record_postgresql(user_id: int, changes: list[Change_], now) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH counter AS (
                INSERT INTO "{_COUNTER}" AS c (user_id, last_seq, compacted_through)
                VALUES (%(user)s, %(count)s, 0)
                ON CONFLICT (user_id) DO UPDATE SET last_seq = c.last_seq + %(count)s
                RETURNING last_seq
            )
            INSERT INTO "{_CHANGE}" (user_id, seq, kind, conversation_id, message_id, created_at)
            SELECT %(user)s, counter.last_seq - %(count)s + v.ord, v.kind, v.conversation_id,
                   v.message_id, %(now)s
              FROM counter,
                   unnest(%(kinds)s::text[], %(conversations)s::bigint[], %(messages)s::bigint[])
                   WITH ORDINALITY AS v(kind, conversation_id, message_id, ord)
            """,
            {
                "user": user_id,
                "count": len(changes),
                "now": now,
                "kinds": [str(kind) for _, kind, _, _ in changes],
                "conversations": [conversation for _, _, conversation, _ in changes],
                "messages": [message for _, _, _, message in changes],
            },
        )


def _record_portable(user_id: int, changes: list[Change_], now) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO "{_COUNTER}" (user_id, last_seq, compacted_through) VALUES (%s, %s, 0)
            ON CONFLICT (user_id) DO UPDATE SET last_seq = last_seq + excluded.last_seq
            RETURNING last_seq
            """,
            [user_id, len(changes)],
        )
        last = cursor.fetchone()[0]
        first = last - len(changes) + 1
        cursor.execute(
            f"""
            INSERT INTO "{_CHANGE}" (user_id, seq, kind, conversation_id, message_id, created_at)
            SELECT %s, %s + CAST(key AS INTEGER), json_extract(value, '$[0]'),
                   json_extract(value, '$[1]'), json_extract(value, '$[2]'), %s
              FROM json_each(%s)
            """,
            [
                user_id,
                first,
                connection.ops.adapt_datetimefield_value(now),
                json.dumps([[str(kind), conv, msg] for _, kind, conv, msg in changes]),
            ],
        )


def compact_changes(*, older_than_days: float | None = None) -> int:
    """Delete changes older than CONFAB_SYNC_RETENTION_DAYS; returns how many. A cursor
    from before the newest deleted change of its user is answered 410 afterwards."""
    days = settings.CONFAB_SYNC_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    with transaction.atomic():
        old = Change.objects.filter(created_at__lt=cutoff)
        through = dict(old.values("user_id").annotate(seq=Max("seq")).values_list("user_id", "seq"))
        for user_id, seq in through.items():
            SyncCounter.objects.filter(user_id=user_id, compacted_through__lt=seq).update(
                compacted_through=seq
            )
        deleted, _ = old.delete()
    return deleted
