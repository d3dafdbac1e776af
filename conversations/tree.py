"""Conversations as trees of messages: the active branch, siblings, branch switches, forks.

Every message has a `parent` (NULL for a first message). A regenerate adds an AI
sibling under the same human message, an edit a human sibling under the edited
message's parent; nothing is deleted. The conversation's active branch is the path
from a root to `Conversation.active_leaf_id`; its messages carry `on_path = true`.

Why flags on the rows: every read of a history (REST and GraphQL pages, the model's
window, websocket resume, export) is then the same keyset range as a linear history,
on the partial index `msg_active_path (conversation_id, id) WHERE on_path`. Ids grow
along any path (a child is always stored after its parent), so "the active path in id
order" is "root to leaf". The cost moves to the rare write that changes the branch: a
switch rewrites the flags of the two diverging segments only (from the deepest common
ancestor down), found by one recursive walk each, never per message in Python.

All writes here run under the conversation's row lock (`select_for_update`), taken by
the caller: two devices switching at once are serialized and end with one leaf whose
path is exactly the flagged rows.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL

from conversations.models import Conversation, ConversationMessage
from core.rows import StoredJSON

_TABLE = ConversationMessage._meta.db_table


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _execute(sql: str, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def append_on_leaf(locked: Conversation, row: ConversationMessage) -> ConversationMessage:
    """Save `row` as the child of the conversation's active leaf and make it the leaf.

    The leaf has no children (a switch always lands on a leaf), so the new message is an
    only child: no sibling list to write. `locked` is the row-locked conversation; the
    caller saves it (its `active_leaf_id` changed)."""
    row.parent_id = locked.active_leaf_id
    row.on_path = True
    row.save()
    locked.active_leaf_id = row.pk
    return row


def add_sibling(
    locked: Conversation, row: ConversationMessage, *, parent_id: int | None
) -> list[int]:
    """Save `row` as a new child of `parent_id` (None: a new first message) and make the
    path to it the active branch (a regenerate, an edit). Returns the ids of its older
    siblings, whose `sibling_ids` changed (their payloads did: the caller records them)."""
    activate_path(locked, parent_id)
    row.parent_id = parent_id
    row.on_path = True
    row.save()
    locked.active_leaf_id = row.pk
    siblings = [
        pk
        for (pk,) in _rows(
            f'SELECT "id" FROM "{_TABLE}" WHERE "conversation_id" = %s AND "parent_id" '
            + ("IS NULL" if parent_id is None else "= %s")
            + ' ORDER BY "id"',
            [locked.pk] if parent_id is None else [locked.pk, parent_id],
        )
    ]
    if len(siblings) > 1:
        ConversationMessage.objects.filter(pk__in=siblings).update(sibling_ids=siblings)
    row.sibling_ids = siblings if len(siblings) > 1 else None
    return [pk for pk in siblings if pk != row.pk]


def activate_path(locked: Conversation, leaf_id: int | None) -> None:
    """Make the path from a root to `leaf_id` the active branch (None: no message).

    One walk up from the leaf, stopping at the first message already on the active path
    (the deepest common ancestor); the old branch below that message and the new segment
    above it change flags; the rest of the path is not touched."""
    conversation_id = locked.pk
    segment: list[int] = []
    common: int | None = None
    if leaf_id is not None:
        walk = _rows(
            f"""
            WITH RECURSIVE up("id", "parent_id", "on_path") AS (
                SELECT "id", "parent_id", "on_path" FROM "{_TABLE}"
                 WHERE "id" = %s AND "conversation_id" = %s
                UNION ALL
                SELECT m."id", m."parent_id", m."on_path" FROM "{_TABLE}" AS m
                  JOIN up ON m."id" = up."parent_id"
                 WHERE NOT up."on_path"
            )
            SELECT "id", "on_path" FROM up
            """,
            [leaf_id, conversation_id],
        )
        for pk, on_path in walk:
            if on_path:
                common = pk
            else:
                segment.append(pk)
    # The active path is ordered by id: what lies below the common ancestor is newer.
    _execute(
        f'UPDATE "{_TABLE}" SET "on_path" = %s WHERE "conversation_id" = %s AND "on_path" '
        'AND "id" > %s',
        [False, conversation_id, common or 0],
    )
    if segment:
        ConversationMessage.objects.filter(pk__in=segment).update(on_path=True)
    locked.active_leaf_id = leaf_id


def path_to(message_id: int) -> RawSQL:
    """The ids from a root down to `message_id`, for `id__in=`: one recursive walk up its
    parents, whatever the active branch is now (a share shows what was shared)."""
    return RawSQL(
        f"""
        WITH RECURSIVE up("id", "parent_id") AS (
            SELECT "id", "parent_id" FROM "{_TABLE}" WHERE "id" = %s
            UNION ALL
            SELECT m."id", m."parent_id" FROM "{_TABLE}" AS m JOIN up ON m."id" = up."parent_id"
        )
        SELECT "id" FROM up
        """,
        [message_id],
    )


def newest_leaf_under(conversation_id: int, message_id: int) -> int:
    """The newest leaf of the subtree of `message_id` (itself when it has no children):
    the subtree's largest id, as a child is always newer than its parent."""
    ((leaf,),) = _rows(
        f"""
        WITH RECURSIVE down("id") AS (
            SELECT "id" FROM "{_TABLE}" WHERE "id" = %s AND "conversation_id" = %s
            UNION ALL
            SELECT m."id" FROM "{_TABLE}" AS m JOIN down ON m."parent_id" = down."id"
        )
        SELECT MAX("id") FROM down
        """,
        [message_id, conversation_id],
    )
    return leaf


def chain_messages(conversation_id: int) -> int:
    """Link a conversation's messages into one chain, each the child of the previous one
    by id, the last one the active leaf (an import or a fork wrote them in order). Two
    statements whatever their number (the set-based form of migration 0015)."""
    _execute(
        f"""
        UPDATE "{_TABLE}" AS m SET "parent_id" = chain."previous"
          FROM (SELECT "id", LAG("id") OVER (ORDER BY "id") AS "previous"
                  FROM "{_TABLE}" WHERE "conversation_id" = %s) AS chain
         WHERE m."id" = chain."id" AND chain."previous" IS NOT NULL
        """,
        [conversation_id],
    )
    leaf = _rows(
        f'SELECT MAX("id") FROM "{_TABLE}" WHERE "conversation_id" = %s', [conversation_id]
    )[0][0]
    Conversation.objects.filter(pk=conversation_id).update(active_leaf_id=leaf)
    return leaf


def sibling_payload(message: Any) -> dict[str, Any]:
    """`{"ids": [...], "index": i}`: the message and its siblings, oldest first, and its
    place among them, from the row's own columns (no query)."""
    ids = message.sibling_ids
    if isinstance(ids, StoredJSON):  # a history row's JSON column, as the database's text
        ids = ids.value()
    if not ids:
        return {"ids": [message.id], "index": 0}
    ids = [int(pk) for pk in ids]
    return {"ids": ids, "index": ids.index(message.id) if message.id in ids else 0}
