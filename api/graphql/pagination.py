"""Connection arguments -> selector arguments, and pages -> connections.

Message cursors are opaque strings over the message-id keyset (the same keyset
as REST's `before`/`after` ids); conversation cursors are the ones of
`selectors.conversation_page`. No OFFSET, no COUNT.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from api.graphql.types.connections import (
    ConversationConnection,
    ConversationEdge,
    MessageConnection,
    MessageEdge,
    PageInfo,
)
from api.graphql.types.conversations import Conversation
from api.graphql.types.messages import Message
from conversations import selectors
from conversations.errors import ValidationFailed

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
        return selectors.parse_message_id(raw.removeprefix(MESSAGE_CURSOR_PREFIX), field=field)
    except (ValueError, UnicodeDecodeError, binascii.Error, ValidationFailed):
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} is not a valid cursor."
        ) from None


@dataclass
class MessageWindow:
    """What `selectors.message_page` gets for one `messages(...)` call."""

    before: int | None
    after: int | None
    limit: int


def message_window(
    *, first: int | None, after: str | None, last: int | None, before: str | None
) -> MessageWindow:
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
        limit = selectors.parse_limit(first, field="first")
        return MessageWindow(before=None, after=after_id or 0, limit=limit)
    return MessageWindow(
        before=before_id, after=None, limit=selectors.parse_limit(last, field="last")
    )


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


def conversation_cursor(after: str | None) -> str | None:
    """Check an `after` cursor of the conversation list up front, naming the argument."""
    if after is None:
        return None
    if len(after) > 200:
        raise ValidationFailed.for_field("after", "invalid", "after is not a valid cursor.")
    try:
        selectors.decode_conversation_cursor(after)
    except ValidationFailed:
        raise ValidationFailed.for_field(
            "after", "invalid", "after is not a valid cursor."
        ) from None
    return after


def check_search(search: str | None) -> str | None:
    if search is not None and len(search) > selectors.MAX_SEARCH_CHARS:
        raise ValidationFailed.for_field(
            "search", "too_long", f"search is longer than {selectors.MAX_SEARCH_CHARS} characters."
        )
    return search


def conversation_connection(
    page: selectors.ConversationPage, *, after: str | None, filters: dict[str, Any]
) -> ConversationConnection:
    edges = [
        ConversationEdge(
            cursor=selectors.encode_conversation_cursor(row), node=Conversation.from_model(row)
        )
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
        filters=filters,
    )
