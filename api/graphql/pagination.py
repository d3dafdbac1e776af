"""Connection arguments -> selector arguments, and pages -> connections.

Message cursors are opaque strings over the message-id keyset (the same keyset
as REST's `before`/`after` ids); conversation cursors are the ones of
`selectors.conversation_page`. No OFFSET, no COUNT.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from api.graphql.types.connections import (
    ConversationConnection,
    ConversationEdge,
    MessageConnection,
    MessageEdge,
    PageInfo,
)
from api.graphql.types.messages import Message
from conversations import inputs, selectors
from core.errors import ValidationFailed

MESSAGE_CURSOR_PREFIX = "message:"


def encode_message_cursor(message_id: int) -> str:
    raw = f"{MESSAGE_CURSOR_PREFIX}{message_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_message_cursor(cursor: str | None, *, field: str) -> int | None:
    """The message id of a cursor; ValidationFailed naming `field` when it is not one."""
    if cursor is None:
        return None
    try:
        if len(cursor) > 64:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(MESSAGE_CURSOR_PREFIX):
            raise ValueError
        return inputs.parse_id_cursor(raw.removeprefix(MESSAGE_CURSOR_PREFIX), field=field)
    except (ValueError, UnicodeDecodeError, binascii.Error, ValidationFailed):
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} is not a valid cursor."
        ) from None


def message_window(
    *, first: int | None, after: str | None, last: int | None, before: str | None
) -> inputs.HistoryRequest:
    """first/after page towards newer messages (first alone: from the oldest);
    last/before towards older ones; neither: the newest page."""
    forward = first is not None or after is not None
    backward = last is not None or before is not None
    if forward and backward:
        raise ValidationFailed.for_field(
            "last" if last is not None else "before",
            "exclusive",
            "Page with first/after (newer) or with last/before (older), not both.",
        )
    after_id = decode_message_cursor(after, field="after")
    before_id = decode_message_cursor(before, field="before")
    if forward:
        size = inputs.parse_limit(first, field="first")
        return inputs.HistoryRequest(size=size, after=after_id or 0)
    return inputs.HistoryRequest(size=inputs.parse_limit(last, field="last"), before=before_id)


def message_connection(page: selectors.MessagePage, conversation_id: int) -> MessageConnection:
    edges = [
        MessageEdge(cursor=encode_message_cursor(row.id), node=Message.from_model(row))
        for row in page.results
    ]
    return MessageConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_newer,
            has_previous_page=page.has_older,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        conversation_id=conversation_id,
    )


def conversation_cursor(after: str | None) -> inputs.ConversationCursor | None:
    """Check an `after` cursor of the conversation list up front, naming the argument."""
    return inputs.parse_conversation_cursor(after, field="after")


def conversation_connection(
    page: selectors.ConversationPage, *, after: str | None, user: Any, filters: dict[str, Any]
) -> ConversationConnection:
    edges = [
        ConversationEdge(cursor=selectors.list_cursor(row).encode(), node=row)
        for row in page.results
    ]
    return ConversationConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_more,
            # Forward-only list: there is something before when the client paged on.
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        user=user,
        filters=filters,
    )
