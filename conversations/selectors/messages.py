"""Reads of messages: history pages, the model's window, resume.

History pages are keyset pages on the message id, served by the
`(conversation_id, id)` index: no OFFSET, no COUNT, the same cost at any depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from conversations import history_pages
from conversations.feedback.selectors import attach_feedback
from conversations.inputs import HistoryRequest, ObjectId, parse_message_id, parse_object_id
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.selectors.conversations import get_conversation
from core import replicas
from core.errors import NotFound


@dataclass
class MessagePage:
    """A history page: `results` oldest first, and whether pages exist on each side."""

    results: list[ConversationMessage] | list[history_pages.MessageRow]
    has_older: bool
    has_newer: bool
    # The owner's ratings of the page's AI messages: {message id: feedback payload}.
    feedback: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def older_cursor(self) -> int | None:
        return self.results[0].id if self.has_older and self.results else None

    @property
    def newer_cursor(self) -> int | None:
        return self.results[-1].id if self.has_newer and self.results else None


def messages_of(conversation: Conversation) -> QuerySet[ConversationMessage]:
    return ConversationMessage.objects.filter(conversation_id=conversation.pk)


def paused_replies(conversation_id: Any, turn_id: Any) -> QuerySet[ConversationMessage]:
    """The turn's reply that waits for tool approval (at most one): a paused turn holds
    its conversation's lock but runs nowhere. Plain values, or OuterRefs in `Exists`."""
    return ConversationMessage.objects.filter(
        conversation_id=conversation_id, turn_id=turn_id, status=MessageStatus.AWAITING_APPROVAL
    )


def in_history_order(conversation_id: int, *, newest_first: bool) -> QuerySet[ConversationMessage]:
    """One conversation's messages in id order (newest or oldest first), read along the
    `(conversation_id, id)` index: filter them further, then slice.

    The conversation is matched as the range [id, id] and ordered by (conversation, id):
    only that index returns rows in that order. With `conversation_id = id`, PostgreSQL
    knows the conversation is fixed, orders by id alone, and may walk the primary key
    instead (its estimate for a conversation holding a large share of the table),
    throwing away every message that other conversations added since: 13-21 ms instead
    of 0.2 behind 100,000 of them (tests/conversations/test_history_plans.py).
    """
    order = ("-conversation_id", "-id") if newest_first else ("conversation_id", "id")
    return ConversationMessage.objects.filter(
        conversation_id__gte=conversation_id, conversation_id__lte=conversation_id
    ).order_by(*order)


def active_path(conversation_id: int, *, newest_first: bool) -> QuerySet[ConversationMessage]:
    """The messages of a conversation's active branch (conversations/tree.py) in id order,
    that is root to leaf (or leaf to root), along the partial index msg_active_path."""
    return in_history_order(conversation_id, newest_first=newest_first).filter(on_path=True)


def message_page(*, conversation: Conversation, request: HistoryRequest) -> MessagePage:
    """A keyset page of a conversation's history (the caller got `conversation` from
    `get_conversation`, which checked ownership).

    No cursor: the newest page; `before`: the page just older than that id; `after`:
    the page just newer. One indexed query whatever the depth
    (conversations/history_pages.py).
    """
    return _message_page(
        conversation_id=conversation.pk, owner_id=conversation.user_id, request=request
    )


def user_message_page(
    *,
    user: Any,
    conversation_id: ObjectId,
    request: HistoryRequest,
    as_rows: bool = False,
) -> MessagePage:
    """`message_page` of the user's conversation by id, ownership checked in the same
    statement: one query for a page with rows. NotFound for someone else's or a
    missing conversation (told apart from an empty page by a second query).

    `as_rows`: results are read-only `history_pages.MessageRow`s for a page that is
    only written out as JSON (their JSON columns stay the database's text)."""
    if not getattr(user, "is_authenticated", False):
        raise NotFound("Conversation not found.")
    return _message_page(
        conversation_id=parse_object_id(conversation_id),
        owner_id=user.pk,
        request=request,
        as_rows=as_rows,
    )


def _message_page(
    *,
    conversation_id: int,
    owner_id: int,
    request: HistoryRequest,
    as_rows: bool = False,
) -> MessagePage:
    if request.after is not None:
        shape, cursor = history_pages.AFTER, request.after
    elif request.before is not None:
        shape, cursor = history_pages.BEFORE, request.before
    else:
        shape, cursor = history_pages.NEWEST, None
    size = request.size
    # History pages may come from a read replica, never older than the owner's last write.
    with replicas.replica_reads(owner_id):
        return _read_message_page(
            conversation_id=conversation_id,
            owner_id=owner_id,
            shape=shape,
            cursor=cursor,
            size=size,
            as_rows=as_rows,
        )


def _read_message_page(
    *, conversation_id: int, owner_id: int, shape: str, cursor: int | None, size: int, as_rows: bool
) -> MessagePage:
    rows, beyond_cursor = history_pages.read_page(
        conversation_id=conversation_id,
        owner_id=owner_id,
        shape=shape,
        cursor=cursor,
        size=size,
        as_rows=as_rows,
    )
    if not rows:
        # The flags ride on the rows: an empty page asks on its own, and first
        # whether the conversation is the owner's at all.
        if not Conversation.objects.filter(pk=conversation_id, user_id=owner_id).exists():
            raise NotFound("Conversation not found.")
        if shape != history_pages.NEWEST:
            # The nearest message beyond the cursor, read in order along the index (an
            # unordered EXISTS may be answered by a scan hoping to meet one early).
            backwards = shape == history_pages.AFTER
            far = Q(id__lte=cursor) if backwards else Q(id__gte=cursor)
            nearest = active_path(conversation_id, newest_first=backwards).filter(far)
            beyond_cursor = nearest.values("id").first() is not None
    more = len(rows) > size
    rows = rows[:size]
    feedback = attach_feedback(rows)
    if shape == history_pages.AFTER:
        return MessagePage(results=rows, has_older=beyond_cursor, has_newer=more, feedback=feedback)
    rows.reverse()
    return MessagePage(results=rows, has_older=more, has_newer=beyond_cursor, feedback=feedback)


def get_user_message(
    *, user: Any, conversation_id: ObjectId, message_id: ObjectId
) -> ConversationMessage:
    """A message of one of the user's conversations (with its feedback), or NotFound."""
    conversation = get_conversation(user=user, conversation_id=conversation_id)
    return get_message(conversation=conversation, message_id=message_id)


def message_of(conversation: Conversation, message_id: ObjectId) -> ConversationMessage:
    """A message of `conversation` (whose owner the caller checked), NotFound otherwise:
    another conversation's message is not there."""
    message = messages_of(conversation).filter(pk=parse_message_id(message_id)).first()
    if message is None:
        raise NotFound("Message not found.")
    return message


def get_message(*, conversation: Conversation, message_id: ObjectId) -> ConversationMessage:
    message = message_of(conversation, message_id)
    attach_feedback([message])
    return message


def messages_after(
    *, conversation_id: int, after_id: int, limit: int
) -> QuerySet[ConversationMessage]:
    """Messages of the active branch newer than `after_id`, oldest first (resume after a
    reconnect)."""
    return active_path(conversation_id, newest_first=False).filter(id__gt=after_id)[:limit]


def history_window(
    *, conversation_id: int, up_to_id: int, size: int
) -> QuerySet[ConversationMessage]:
    """The last `size` finished messages of the active branch up to `up_to_id`, newest
    first (the model's window): one indexed range whatever the tree's size.

    Failed and streaming replies are left out: the model sees only what was
    really said.
    """
    return (
        active_path(conversation_id, newest_first=True)
        .filter(id__lte=up_to_id)
        .filter(Q(status=MessageStatus.COMPLETE) | Q(status=MessageStatus.CANCELLED))[:size]
    )


async def astreaming_text(*, message_id: int) -> ConversationMessage | None:
    """A message's stored text and status only (what a relay polls while it streams)."""
    return await ConversationMessage.objects.filter(pk=message_id).only("text", "status").afirst()


async def amessage_count(*, conversation_id: int) -> int:
    """The conversation's stored message counter (the caller checked ownership)."""
    count = await (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("message_count", flat=True)
        .afirst()
    )
    return count or 0


async def alast_message_id(*, conversation_id: int) -> int | None:
    return await (
        active_path(conversation_id, newest_first=True).values_list("id", flat=True).afirst()
    )
