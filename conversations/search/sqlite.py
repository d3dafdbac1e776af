"""SQLite: `confab_search_text(text)` on every connection, for the triggers that keep the
FTS5 table (`conversations_message_fts`) in step with the messages."""

from __future__ import annotations

from typing import Any

from django.db.backends.signals import connection_created
from django.dispatch import receiver

from conversations.search.text import search_text


def register(sqlite_connection: Any) -> None:
    sqlite_connection.create_function("confab_search_text", 1, search_text, deterministic=True)


@receiver(connection_created)
def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        register(connection.connection)
