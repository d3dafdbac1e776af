"""Message writes outside the turn engine (imports, fixtures, admin tools)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from langchain_core.messages import BaseMessage

from conversations.codec import encode_message, role_of, text_of, usage_of
from conversations.events import EventType, message_event, publish_on_commit
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


@transaction.atomic
def append_message(
    *,
    conversation: Conversation,
    message: BaseMessage,
    status: str = MessageStatus.COMPLETE,
    client_message_id: str | None = None,
    model: str = "",
) -> ConversationMessage:
    """Store one complete LangChain message at the end of a conversation."""
    row = build_message(
        conversation=conversation,
        message=message,
        status=status,
        client_message_id=client_message_id,
        model=model,
    )
    row.save()
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(
        message_count=F("message_count") + 1, last_message_at=now, activity_at=now
    )
    publish_on_commit(message_event(EventType.MESSAGE_CREATED, row), user_id=conversation.user_id)
    return row
