"""Reads of feedback: each message's rating by its owner, for the message payload."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from conversations.feedback.models import MessageFeedback
from conversations.models import MessageRole
from conversations.payloads import feedback_payload


def feedback_by_message(messages: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """{message id: feedback payload} of the AI messages among `messages` (instances or
    history rows) that their owner rated: one query, none without an AI message. Only
    the owner's rating is read: messages are seen by their owner alone."""
    wanted = {m.id: m.user_id for m in messages if m.role == MessageRole.AI}
    if not wanted:
        return {}
    rows = MessageFeedback.objects.filter(message_id__in=list(wanted)).only(
        "message_id", "user_id", "rating", "comment", "updated_at"
    )
    return {
        row.message_id: feedback_payload(row)
        for row in rows
        if wanted.get(row.message_id) == row.user_id
    }


def attach_feedback(messages: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """Set `.user_feedback` (what `message_payload` shows) on each message instance, in
    one query; returns the map too (history rows are read-only: pages keep the map)."""
    found = feedback_by_message(messages)
    for message in messages:
        if hasattr(message, "__dict__"):
            message.user_feedback = found.get(message.id)
    return found
