"""Helpers of the export/import tests: what a round trip keeps, and stored JSON as text."""

from __future__ import annotations

import copy
from typing import Any

from django.db import connection

from conversations.models import ConversationMessage


def without_ids(document: dict[str, Any]) -> dict[str, Any]:
    """What a round trip keeps: everything but ids, turn ids and the times of writing."""
    document = copy.deepcopy(document)
    document.pop("exported_at")
    for conversation in document["conversations"]:
        for key in ("id", "updated_at"):
            conversation.pop(key)
        for message in conversation["messages"]:
            for key in ("id", "turn_id", "updated_at"):
                message.pop(key)
            if message["feedback"]:
                message["feedback"].pop("updated_at")
    return document


def stored_contents(conversation_id: int) -> list[str]:
    """The content column exactly as the database holds it (its text)."""
    table = ConversationMessage._meta.db_table
    cast = "content::text" if connection.vendor == "postgresql" else "content"
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {cast} FROM "{table}" WHERE conversation_id = %s ORDER BY id',
            [conversation_id],
        )
        return [row[0] for row in cursor.fetchall()]
