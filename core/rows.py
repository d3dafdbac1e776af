"""Model instances from the rows of a hand-written statement, as the ORM builds them.

For the two reads every request makes (the bearer-token lookup and a history
page), compiling the query and `Model.__init__` cost more than the database
(bench/BENCHMARKS.md). `RowLoader` turns the columns of one model into an
instance that is indistinguishable from a queryset's: the backend's and the
field's converters run as the compiler runs them (JSON through orjson, which is
several times faster than `json.loads`), and the instance is filled the way
`Model.from_db` fills it, without `__init__`'s per-field descriptor calls
unless something listens to the model's `pre_init`/`post_init` signals.

`load_timestamps_in_c` has a PostgreSQL cursor parse timestamps in C.
`StoredJSON` keeps a JSON column as the text the database returned, for rows that
are only written out again as JSON (`orjson_default` embeds it as is).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import orjson
import psycopg
from django.db import connections
from django.db.models import JSONField, Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from psycopg.postgres import types as postgres_types
from psycopg.pq import Format

ModelT = TypeVar("ModelT", bound=Model)
Converter = Callable[[Any], Any]


class RowLoader(Generic[ModelT]):
    """Columns and instance building for `model`'s concrete fields, in field order."""

    def __init__(self, model: type[ModelT]) -> None:
        self.model = model
        self.names = tuple(field.attname for field in model._meta.concrete_fields)
        self.width = len(self.names)

    def columns(self, table: str | None = None) -> str:
        """The select list: every concrete column, qualified by `table` (default: the model's)."""
        table = table or self.model._meta.db_table
        return ", ".join(
            f'"{table}"."{field.column}"' for field in self.model._meta.concrete_fields
        )

    def instance(self, alias: str, row: Sequence[Any], start: int = 0) -> ModelT:
        """The instance of the model's columns in `row[start:start + width]`."""
        values = list(row[start : start + self.width])
        for index, convert in self._converters(alias):
            values[index] = convert(values[index])
        model = self.model
        if pre_init.has_listeners(model) or post_init.has_listeners(model):
            return model.from_db(alias, self.names, values)
        instance = model.__new__(model)
        instance.__dict__.update(zip(self.names, values, strict=True))
        instance._state = ModelState()
        instance._state.adding = False
        instance._state.db = alias
        return instance

    def convert_scalars(self, alias: str, values: list[Any]) -> None:
        """Run the converters of every column but the JSON ones on `values` (in place):
        what a row keeps of the database's own types must read the same on every
        backend (SQLite, for one, returns naive timestamps that the backend's converter
        makes aware)."""
        for index, convert in self._scalar_converters(alias):
            values[index] = convert(values[index])

    @functools.cache  # noqa: B019 - one loader per model, kept for the process's life
    def _scalar_converters(self, alias: str) -> tuple[tuple[int, Converter], ...]:
        json_columns = {
            index
            for index, field in enumerate(self.model._meta.concrete_fields)
            if isinstance(field, JSONField)
        }
        return tuple(
            (index, convert)
            for index, convert in self._converters(alias)
            if index not in json_columns
        )

    @functools.cache  # noqa: B019 - one loader per model, kept for the process's life
    def _converters(self, alias: str) -> tuple[tuple[int, Converter], ...]:
        """(column index, converter) for the columns that need one. They depend on the
        database backend only, so they are looked up once per alias."""
        connection = connections[alias]
        meta = self.model._meta
        found: list[tuple[int, Converter]] = []
        for index, field in enumerate(meta.concrete_fields):
            column = field.get_col(meta.db_table)
            functions = connection.ops.get_db_converters(column) + field.get_db_converters(
                connection
            )
            if isinstance(field, JSONField) and field.decoder is None and len(functions) == 1:
                found.append((index, functools.partial(_json, functions[0], column, connection)))
            elif functions:
                found.append((index, functools.partial(_chain, functions, column, connection)))
        return tuple(found)


_TIMESTAMPTZ_OID = postgres_types["timestamptz"].oid


def load_timestamps_in_c(cursor: Any) -> None:
    """On PostgreSQL, have this Django cursor parse `timestamptz` with psycopg's C loader.

    Django registers a Python subclass of psycopg's loader (to pin the time zone),
    which parses every timestamp in Python; the connection's zone is already UTC
    (`TIME_ZONE` setting), so the values are the same.
    """
    if cursor.db.vendor != "postgresql":
        return
    cursor.cursor.adapters.register_loader(
        _TIMESTAMPTZ_OID, psycopg.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)
    )


class StoredJSON:
    """A JSON value as the database's JSON text: written into a JSON document unparsed
    (`orjson_default`), parsed only if something else must read it (`value`)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        # json, not orjson: orjson reads integers beyond 64 bits as floats.
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"StoredJSON({self.text!r})"


def orjson_default(value: Any) -> Any:
    """orjson's `default` hook: a `StoredJSON` becomes its text, embedded as is."""
    if isinstance(value, StoredJSON):
        return orjson.Fragment(value.text)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


# 19 digits in a row: maybe an integer beyond 64 bits, which orjson reads as a float.
_LONG_DIGIT_RUN = re.compile(r"\d{19}")


def _json(fallback: Any, column: Any, connection: Any, value: Any) -> Any:
    if value is None:
        return None
    if _LONG_DIGIT_RUN.search(value):
        # jsonb holds integers of any size; the field's own loader keeps them exact.
        return fallback(value, column, connection)
    return orjson.loads(value)


def _chain(functions: list[Any], column: Any, connection: Any, value: Any) -> Any:
    for convert in functions:
        value = convert(value, column, connection)
    return value
