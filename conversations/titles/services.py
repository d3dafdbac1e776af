"""Writes of automatic titles: claiming a conversation's one attempt, storing its title."""

from __future__ import annotations

from django.utils import timezone

from conversations.effects import emit, write
from conversations.events import EventType, conversation_event
from conversations.models import Conversation, TitleSource


def _untitled(conversation_id: int):
    """The conversation, while no one has titled it: no title, and none set (or cleared)
    by the user. Checked inside each UPDATE, so a concurrent user edit always wins."""
    return Conversation.objects.filter(pk=conversation_id, title="", title_source=TitleSource.NONE)


def claim_title_attempt(*, conversation_id: int) -> bool:
    """Take the conversation's one title attempt; False when it is titled or its attempt
    was taken (by an earlier turn, or another process). One conditional UPDATE: of
    several callers, one gets True."""
    claimed = (
        _untitled(conversation_id)
        .filter(title_attempted_at__isnull=True)
        .update(title_attempted_at=timezone.now())
    )
    return claimed == 1


@write
def store_generated_title(*, conversation_id: int, title: str) -> Conversation | None:
    """Store a generated title and announce it (`conversation.updated` on every live
    surface and in the changes feed); None, and nothing written, when the conversation
    was titled meanwhile (the user's title stays) or is gone.

    A conditional UPDATE, not a read-then-save: a user's PATCH that commits while the
    title is generated sets `title_source`, and this UPDATE then matches no row (on
    PostgreSQL it waits for the PATCH's row lock and re-checks its condition)."""
    updated = _untitled(conversation_id).update(
        title=title, title_source=TitleSource.AUTO, updated_at=timezone.now()
    )
    if not updated:
        return None
    # Agent joined: the event's payload names it (no lazy read).
    conversation = Conversation.objects.select_related("agent").get(pk=conversation_id)
    emit(
        conversation_event(EventType.CONVERSATION_UPDATED, conversation),
        user_id=conversation.user_id,
    )
    return conversation
