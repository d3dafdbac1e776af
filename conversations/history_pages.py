"""The SQL of a history page: one statement per page shape, rows as model instances.

History paging is the hottest read of every surface. Through a queryset, the ORM's
own work for a 50-row page cost about 3.6x the raw keyset query
(bench/history_paging.py, bench/BENCHMARKS.md): compiling the query, Django's
pure-Python timestamp loader, `json.loads` per JSON column and `Model.__init__` per
row. Here:

- the statement of each page shape is built once from the model's metadata and
  runs through Django's cursor (query logging and execute wrappers still see it);
- on PostgreSQL, timestamps are parsed by psycopg's C loader (the connection's time
  zone is UTC, as Django sets it, so the values are the same aware datetimes);
- JSON columns are decoded by orjson, falling back to the field's own converter
  for what orjson refuses (integers beyond 64 bits, which jsonb can hold);
- rows become model instances the way `Model.from_db` would make them, filling
  the instance's fields directly unless something listens to the model's
  `pre_init`/`post_init` signals (then through `from_db` itself).

`conversations.selectors.message_page` is the public entry point: it parses the
user's cursor and limit and decides which shape to read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg
from django.db import connections, router
from django.db.models import JSONField
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from psycopg.postgres import types as postgres_types
from psycopg.pq import Format

from conversations.models import Conversation, ConversationMessage

NEWEST = "newest"
BEFORE = "before"
AFTER = "after"

Converter = Callable[[Any], Any]


@functools.cache
def page_sql(shape: str) -> str:
    """The statement of a page shape; parameters: (conversation, owner, conversation,
    [cursor, conversation, cursor,] limit).

    The owner check rides along as an uncorrelated EXISTS on the conversation's
    primary key: no row comes back for someone else's conversation. `before`/`after`
    add whether any message lies on the far side of the cursor, also an uncorrelated
    EXISTS. PostgreSQL evaluates each once, so a page, its ownership and both of its
    "more" flags cost one round trip.
    """
    meta = ConversationMessage._meta
    table = meta.db_table
    owners = Conversation._meta.db_table
    columns = ", ".join(f'"{table}"."{field.column}"' for field in meta.concrete_fields)
    owned = f'EXISTS (SELECT 1 FROM "{owners}" WHERE "id" = %s AND "user_id" = %s)'
    if shape == NEWEST:
        return (
            f'SELECT {columns} FROM "{table}" WHERE "conversation_id" = %s AND {owned} '
            'ORDER BY "id" DESC LIMIT %s'
        )
    near, far, order = ("<", ">=", "DESC") if shape == BEFORE else (">", "<=", "ASC")
    return (
        f'SELECT {columns}, EXISTS (SELECT 1 FROM "{table}" AS "far" WHERE '
        f'"far"."conversation_id" = %s AND "far"."id" {far} %s) FROM "{table}" '
        f'WHERE "conversation_id" = %s AND {owned} AND "id" {near} %s '
        f'ORDER BY "id" {order} LIMIT %s'
    )


def read_page(
    *, conversation_id: int, owner_id: int, shape: str, cursor: int | None, size: int
) -> tuple[list[ConversationMessage], bool]:
    """Up to `size` + 1 messages in the shape's order (newest first unless `after`),
    and whether a message exists beyond the cursor (False for `newest`).

    No rows when the conversation is not `owner_id`'s (or has none on this page).
    """
    if shape == NEWEST:
        params: Sequence[Any] = (conversation_id, conversation_id, owner_id, size + 1)
    else:
        params = (
            *(conversation_id, cursor),
            *(conversation_id, conversation_id, owner_id, cursor),
            size + 1,
        )
    alias = router.db_for_read(ConversationMessage)
    with connections[alias].cursor() as db_cursor:
        if connections[alias].vendor == "postgresql":
            _load_timestamps_in_c(db_cursor.cursor)
        db_cursor.execute(page_sql(shape), params)
        rows = db_cursor.fetchall()
    messages = [_instance(alias, row) for row in rows]
    beyond_cursor = bool(rows[0][-1]) if rows and shape != NEWEST else False
    return messages, beyond_cursor


@functools.cache
def _field_names() -> tuple[str, ...]:
    """The concrete fields' attnames, in the order of the columns and of `from_db`."""
    return tuple(field.attname for field in ConversationMessage._meta.concrete_fields)


@functools.cache
def _converters(alias: str) -> tuple[tuple[int, Converter], ...]:
    """(column index, converter) for each column that needs converting: the backend's
    and the field's own converters, as the ORM's compiler applies them (JSON through
    orjson). They depend on the database backend only: looked up once per alias."""
    connection = connections[alias]
    meta = ConversationMessage._meta
    found: list[tuple[int, Converter]] = []
    for index, field in enumerate(meta.concrete_fields):
        column = field.get_col(meta.db_table)
        functions = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if isinstance(field, JSONField) and field.decoder is None and len(functions) == 1:
            found.append((index, functools.partial(_json, functions[0], column, connection)))
        elif functions:
            found.append((index, functools.partial(_chain, functions, column, connection)))
    return tuple(found)


def _json(fallback: Any, column: Any, connection: Any, value: Any) -> Any:
    if value is None:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return fallback(value, column, connection)


def _chain(functions: list[Any], column: Any, connection: Any, value: Any) -> Any:
    for convert in functions:
        value = convert(value, column, connection)
    return value


def _instance(alias: str, row: Sequence[Any]) -> ConversationMessage:
    names = _field_names()
    values = list(row[: len(names)])
    for index, convert in _converters(alias):
        values[index] = convert(values[index])
    if pre_init.has_listeners(ConversationMessage) or post_init.has_listeners(ConversationMessage):
        return ConversationMessage.from_db(alias, names, values)
    # What `from_db` makes, without `__init__`'s per-field descriptor calls.
    message = ConversationMessage.__new__(ConversationMessage)
    message.__dict__.update(zip(names, values, strict=True))
    message._state = ModelState()
    message._state.adding = False
    message._state.db = alias
    return message


_TIMESTAMPTZ_OID = postgres_types["timestamptz"].oid


def _load_timestamps_in_c(cursor: Any) -> None:
    # Django registers a Python subclass of psycopg's loader (to pin the time zone),
    # which parses every timestamp in Python; the connection's zone is already UTC.
    cursor.adapters.register_loader(
        _TIMESTAMPTZ_OID, psycopg.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)
    )
