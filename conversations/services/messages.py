"""Message writes outside the turn engine (imports, fixtures, admin tools)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

from conversations import tree
from conversations.codec import encode_message, role_of, text_of, usage_of
from conversations.effects import emit, write
from conversations.events import EventType, conversation_event, message_event
from conversations.models import Conversation, ConversationMessage, MessageStatus


def build_message(
    *,
    conversation: Conversation,
    message: BaseMessage,
    status: str = MessageStatus.COMPLETE,
    **fields: Any,
) -> ConversationMessage:
    """An unsaved row for a LangChain message, with its role, text and usage columns."""
    fields.setdefault("usage", usage_of(message))
    return ConversationMessage(
        conversation_id=conversation.pk,
        user_id=conversation.user_id,
        role=role_of(message),
        content=encode_message(message),
        text=text_of(message),
        status=status,
        **fields,
    )


@write
def append_message(
    *,
    conversation: Conversation,
    message: BaseMessage,
    status: str = MessageStatus.COMPLETE,
    client_message_id: str | None = None,
    model: str = "",
) -> ConversationMessage:
    """Store one complete LangChain message at the end of a conversation's active branch."""
    row = build_message(
        conversation=conversation,
        message=message,
        status=status,
        client_message_id=client_message_id,
        model=model,
    )
    locked = Conversation.objects.select_for_update(of=("self",)).select_related("agent")
    updated = locked.get(pk=conversation.pk)
    tree.append_on_leaf(updated, row)
    updated.message_count += 1
    updated.last_message_at = updated.activity_at = row.created_at
    updated.save(
        update_fields=[
            "active_leaf_id",
            "message_count",
            "last_message_at",
            "activity_at",
            "updated_at",
        ]
    )
    emit(message_event(EventType.MESSAGE_CREATED, row), user_id=conversation.user_id)
    emit(conversation_event(EventType.CONVERSATION_UPDATED, updated), user_id=updated.user_id)
    return row
