"""Marks for the tests whose feature itself needs PostgreSQL or Redis.

Everything the product does on the embedded default (SQLite, the in-memory channel
layer, the local-memory cache) is tested there; these marks skip only what cannot
exist there, and the reason names the variable that turns it on.
"""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connections

POSTGRES_HINT = "set DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres (CI's second leg)"
REDIS_HINT = "set REDIS_URL=redis://127.0.0.1:6379/0 (CI's second leg)"


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def on_redis() -> bool:
    return bool(os.environ.get("REDIS_URL"))


def needs_postgres(what: str) -> pytest.MarkDecorator:
    """Skip unless the database is PostgreSQL; `what` says which feature needs it."""
    return pytest.mark.skipif(not on_postgres(), reason=f"{what} needs PostgreSQL: {POSTGRES_HINT}")


def needs_redis(what: str) -> pytest.MarkDecorator:
    """Skip unless Redis is configured; `what` says which feature needs it."""
    return pytest.mark.skipif(not on_redis(), reason=f"{what} needs Redis: {REDIS_HINT}")


def database_pool():
    """The default database's psycopg pool, or skip (SQLite has none; DB_POOL may be off)."""
    pool = getattr(connections["default"], "pool", None)
    if pool is None:
        pytest.skip(f"the connection pool needs PostgreSQL with DB_POOL on: {POSTGRES_HINT}")
    return pool
