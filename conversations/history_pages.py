"""The SQL of a history page: one statement per page shape, rows as model instances.

History paging is the hottest read of every surface. Through a queryset, the ORM's
own work for a 50-row page cost about 3.6x the raw keyset query
(bench/history_paging.py, bench/BENCHMARKS.md): compiling the query, Django's
pure-Python timestamp loader, `json.loads` per JSON column and `Model.__init__` per
row. Here the statement of each page shape is built once from the model's
metadata and runs through Django's cursor (query logging and execute wrappers
still see it); on PostgreSQL, timestamps are parsed by psycopg's C loader; rows
become instances through `core.rows.RowLoader`.

`conversations.selectors.message_page` and `user_message_page` are the public
entry points: they parse the user's cursor and limit and pick the shape.

A page that is only written out as JSON (REST) can ask for `MessageRow`s instead
of instances: the columns as they come, JSON columns kept as the database's text
(`core.rows.StoredJSON`), so no message's content is parsed and serialized again.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from django.db import connections, router
from django.db.models import JSONField

from conversations.models import Conversation, ConversationMessage
from core.rows import RowLoader, StoredJSON, load_timestamps_in_c

NEWEST = "newest"
BEFORE = "before"
AFTER = "after"

MESSAGE_ROWS = RowLoader(ConversationMessage)


class MessageRow(NamedTuple):
    """A stored message, read-only, with the model's attribute names: what
    `conversations.payloads.message_payload` reads. JSON columns are `StoredJSON`."""

    id: int
    conversation_id: int
    user_id: int
    role: str
    content: StoredJSON
    text: str
    status: str
    turn_id: UUID | None
    client_message_id: str | None
    model: str
    usage: StoredJSON | None
    error: StoredJSON | None
    created_at: datetime
    updated_at: datetime
    parent_id: int | None
    on_path: bool
    sibling_ids: StoredJSON | None


# A field added to the model must be added to MessageRow: fail at import, not in a page.
assert MessageRow._fields == MESSAGE_ROWS.names, "MessageRow is out of step with the model"
_JSON_COLUMNS = tuple(
    index
    for index, field in enumerate(ConversationMessage._meta.concrete_fields)
    if isinstance(field, JSONField)
)


def message_row(alias: str, row: Sequence[Any]) -> MessageRow:
    """The `MessageRow` of a row whose first columns are `MESSAGE_ROWS.columns()`, read
    from database `alias`."""
    values = list(row[: MESSAGE_ROWS.width])
    MESSAGE_ROWS.convert_scalars(alias, values)
    for index in _JSON_COLUMNS:
        if isinstance(values[index], str):
            values[index] = StoredJSON(values[index])
    return MessageRow._make(values)


@functools.cache
def page_sql(shape: str) -> str:
    """The statement of a page shape, with the named parameters `conversation`, `owner`,
    `limit` and, past a cursor, `cursor` (see `read_page`).

    The conversation is matched as the range [id, id], the cursor as a row comparison
    on (conversation, id), and the rows are ordered by (conversation, id): only the
    `(conversation_id, id)` indexes serve that (msg_active_path: the active branch).
    With `conversation_id = %s ... ORDER BY id`, PostgreSQL knows the conversation is
    fixed, orders by id alone, and may walk the primary key instead, throwing away every
    message other conversations added since (`selectors.in_history_order`); with
    `id < %s` it may read every message below the cursor and sort them.

    The owner check rides along as an uncorrelated EXISTS on the conversation's
    primary key: no row comes back for someone else's conversation. `before`/`after`
    add whether any message lies on the far side of the cursor: the nearest one's id, an
    uncorrelated subquery ordered like the page (an EXISTS would lose its ORDER BY and
    could be answered by a scan that hopes to meet a match early). PostgreSQL evaluates
    each once, so a page, its ownership and both of its "more" flags cost one round
    trip.
    """
    table = ConversationMessage._meta.db_table
    owners = Conversation._meta.db_table
    columns = MESSAGE_ROWS.columns()
    # The active branch only (conversations/tree.py): the partial index msg_active_path
    # holds exactly these rows, so a branched history pages like a linear one.
    this = '"conversation_id" BETWEEN %(conversation)s AND %(conversation)s AND "on_path"'
    owned = (
        f'EXISTS (SELECT 1 FROM "{owners}" WHERE "id" = %(conversation)s AND "user_id" = %(owner)s)'
    )
    if shape == NEWEST:
        return (
            f'SELECT {columns} FROM "{table}" WHERE {this} AND {owned} '
            'ORDER BY "conversation_id" DESC, "id" DESC LIMIT %(limit)s'
        )
    near, far, order, far_order = (
        ("<", ">=", "DESC", "ASC") if shape == BEFORE else (">", "<=", "ASC", "DESC")
    )
    key = '("conversation_id", "id")'
    cursor = "(%(conversation)s, %(cursor)s)"
    beyond = (
        f'SELECT "id" FROM "{table}" WHERE {this} AND {key} {far} {cursor} '
        f'ORDER BY "conversation_id" {far_order}, "id" {far_order} LIMIT 1'
    )
    return (
        f'SELECT {columns}, ({beyond}) IS NOT NULL FROM "{table}" '
        f"WHERE {this} AND {owned} AND {key} {near} {cursor} "
        f'ORDER BY "conversation_id" {order}, "id" {order} LIMIT %(limit)s'
    )


def read_page(
    *,
    conversation_id: int,
    owner_id: int,
    shape: str,
    cursor: int | None,
    size: int,
    as_rows: bool = False,
) -> tuple[list[ConversationMessage] | list[MessageRow], bool]:
    """Up to `size` + 1 messages in the shape's order (newest first unless `after`),
    and whether a message exists beyond the cursor (False for `newest`). Instances,
    or `MessageRow`s with `as_rows`.

    No rows when the conversation is not `owner_id`'s (or has none on this page).
    """
    params = {"conversation": conversation_id, "owner": owner_id, "limit": size + 1}
    if shape != NEWEST:
        params["cursor"] = cursor
    alias = router.db_for_read(ConversationMessage)
    with connections[alias].cursor() as db_cursor:
        load_timestamps_in_c(db_cursor)
        db_cursor.execute(page_sql(shape), params)
        rows = db_cursor.fetchall()
    if as_rows:
        messages: list[Any] = [message_row(alias, row) for row in rows]
    else:
        messages = [MESSAGE_ROWS.instance(alias, row) for row in rows]
    beyond_cursor = bool(rows[0][-1]) if rows and shape != NEWEST else False
    return messages, beyond_cursor
