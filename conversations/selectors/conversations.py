"""Reads of conversations: owner-scoped lookups and the keyset-paged list."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Q, QuerySet

from conversations.feedback.selectors import attach_feedback
from conversations.filters import ConversationFilter
from conversations.inputs import ConversationCursor, ObjectId, parse_object_id
from conversations.models import Conversation, ConversationMessage
from core import replicas
from core.errors import NotFound, ValidationFailed


def conversations_of(user: Any) -> QuerySet[Conversation]:
    """The base queryset of every conversation read: the user's own, agent joined."""
    if not getattr(user, "is_authenticated", False):
        return Conversation.objects.none()
    return Conversation.objects.filter(user_id=user.pk).select_related("agent")


def get_conversation(*, user: Any, conversation_id: ObjectId) -> Conversation:
    """The user's conversation, or NotFound (also for another user's)."""
    pk = parse_object_id(conversation_id)
    conversation = conversations_of(user).filter(pk=pk).first()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


async def aget_conversation(*, user: Any, conversation_id: ObjectId) -> Conversation:
    pk = parse_object_id(conversation_id)
    conversation = await conversations_of(user).filter(pk=pk).afirst()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


Parsed = TypeVar("Parsed")


def parse_for_conversation(
    parse: Callable[[], Parsed], *, user: Any, conversation_id: ObjectId
) -> Parsed:
    """`parse()` the input of a request about one conversation. When the input is bad,
    someone else's (or a missing) conversation is still NotFound: a 400 would confirm
    that the conversation exists."""
    try:
        return parse()
    except ValidationFailed:
        get_conversation(user=user, conversation_id=conversation_id)
        raise


async def aparse_for_conversation(
    parse: Callable[[], Parsed], *, user: Any, conversation_id: ObjectId
) -> Parsed:
    """`parse_for_conversation` for async callers."""
    try:
        return parse()
    except ValidationFailed:
        await aget_conversation(user=user, conversation_id=conversation_id)
        raise


@dataclass
class ConversationPage:
    results: list[Conversation]
    next_cursor: str | None
    has_more: bool


def filter_conversations(
    *,
    user: Any,
    filters: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> QuerySet[Conversation]:
    """The user's conversations narrowed by the list filters (`ConversationFilter`: raw
    values, validated there), pinned ones first, then newest activity first."""
    queryset = ConversationFilter.apply(conversations_of(user), filters or {}, names=names)
    if (filters or {}).get("q"):
        # Search may read from a replica, never older than the user's last write.
        queryset = queryset.using(replicas.read_alias(user.pk))
    return queryset.order_by("-pinned", "-activity_at", "-id")


def conversation_page(
    *,
    user: Any,
    size: int,
    cursor: ConversationCursor | None = None,
    filters: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> ConversationPage:
    """One page of the conversation list, keyset on (pinned, activity_at, id) descending:
    the pinned conversations, then the others."""
    queryset = filter_conversations(user=user, filters=filters, names=names)
    if cursor is not None:
        after_in_group = Q(pinned=cursor.pinned) & (
            Q(activity_at__lt=cursor.activity_at)
            | Q(activity_at=cursor.activity_at, id__lt=cursor.id)
        )
        # Past a pinned conversation come the rest of the pinned ones, then every unpinned.
        queryset = queryset.filter(
            (after_in_group | Q(pinned=False)) if cursor.pinned else after_in_group
        )
    rows = list(queryset[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    attach_last_messages(rows)
    return ConversationPage(
        results=rows,
        next_cursor=list_cursor(rows[-1]).encode() if has_more else None,
        has_more=has_more,
    )


def list_cursor(conversation: Conversation) -> ConversationCursor:
    """The list position just after `conversation`."""
    return ConversationCursor(
        activity_at=conversation.activity_at, id=conversation.pk, pinned=conversation.pinned
    )


def attach_last_messages(conversations: list[Conversation]) -> None:
    """Set `.last_message` on each conversation, from the rows' `active_leaf_id`: one
    query for the messages (and their ratings), no N+1."""
    if not conversations:
        return
    messages = _leaves({c.pk: c.active_leaf_id for c in conversations})
    for conversation in conversations:
        conversation.last_message = messages.get(conversation.pk)


def last_messages(*, conversation_ids: list[int]) -> dict[int, ConversationMessage]:
    """The newest message of each conversation's active branch (its leaf), in two queries.

    The ids must come from conversations the caller already scoped to its user
    (a page, an owner-checked object, an event of a group it was allowed to join).
    """
    if not conversation_ids:
        return {}
    return _leaves(
        dict(
            Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "active_leaf_id")
        )
    )


def _leaves(leaf_ids: dict[int, int | None]) -> dict[int, ConversationMessage]:
    """The leaf message of each conversation (`{conversation id: active_leaf_id}`), its
    rating attached. The leaf is the newest message of the active branch
    (conversations/tree.py keeps it under the conversation's row lock)."""
    messages = ConversationMessage.objects.in_bulk(
        [leaf for leaf in leaf_ids.values() if leaf is not None]
    )
    attach_feedback(list(messages.values()))
    return {pk: messages[leaf] for pk, leaf in leaf_ids.items() if leaf in messages}
