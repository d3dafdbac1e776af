"""Reads of conversations: owner-scoped lookups and the keyset-paged list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import OuterRef, Q, QuerySet, Subquery

from conversations.feedback.selectors import attach_feedback
from conversations.inputs import ConversationCursor, ObjectId, parse_object_id
from conversations.models import Conversation, ConversationMessage
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


class _NoProject:
    """The `project` list filter's "in no project"."""

    def __repr__(self) -> str:
        return "NO_PROJECT"


NO_PROJECT: Any = _NoProject()
# A project id, NO_PROJECT, or None (any project or none).
ProjectFilter = int | _NoProject | None


def parse_project_filter(value: str | None, *, field: str = "project") -> ProjectFilter:
    """The `project` list filter a client sent: a project id, or `none` (in no project);
    None when absent. An id that is not one of the user's projects matches nothing."""
    if value is None or value == "":
        return None
    if str(value).lower() == "none":
        return NO_PROJECT
    try:
        return parse_object_id(value)
    except NotFound:
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} must be a project id or none."
        ) from None


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
    archived: bool | None = None,
    agent: str | None = None,
    q: str | None = None,
    project: ProjectFilter = None,
) -> QuerySet[Conversation]:
    """The user's conversations with the list filters applied: pinned ones first, then
    newest activity first. `project`: a project id, or NO_PROJECT for those in none."""
    queryset = conversations_of(user)
    if project is NO_PROJECT:
        queryset = queryset.filter(project__isnull=True)
    elif project is not None:
        queryset = queryset.filter(project_id=project)
    if archived is not None:
        queryset = queryset.filter(archived_at__isnull=not archived)
    if agent:
        queryset = queryset.filter(agent__slug=agent)
    if q:
        queryset = queryset.filter(title__icontains=q)
    return queryset.order_by("-pinned", "-activity_at", "-id")


def conversation_page(
    *,
    user: Any,
    size: int,
    cursor: ConversationCursor | None = None,
    archived: bool | None = None,
    agent: str | None = None,
    q: str | None = None,
    project: ProjectFilter = None,
) -> ConversationPage:
    """One page of the conversation list, keyset on (pinned, activity_at, id) descending:
    the pinned conversations, then the others."""
    queryset = filter_conversations(user=user, archived=archived, agent=agent, q=q, project=project)
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
    """Set `.last_message` on each conversation with two queries (no N+1)."""
    if not conversations:
        return
    messages = last_messages(conversation_ids=[c.pk for c in conversations])
    for conversation in conversations:
        conversation.last_message = messages.get(conversation.pk)


def last_messages(*, conversation_ids: list[int]) -> dict[int, ConversationMessage]:
    """The newest message of each conversation that has one, in two queries.

    The ids must come from conversations the caller already scoped to its user
    (a page, an owner-checked object, an event of a group it was allowed to join).
    """
    if not conversation_ids:
        return {}
    last_ids = (
        Conversation.objects.filter(pk__in=conversation_ids)
        .annotate(
            last_id=Subquery(
                ConversationMessage.objects.filter(conversation_id=OuterRef("pk"))
                .order_by("-id")
                .values("id")[:1]
            )
        )
        .values_list("pk", "last_id")
    )
    by_conversation = {pk: mid for pk, mid in last_ids if mid is not None}
    messages = ConversationMessage.objects.in_bulk(list(by_conversation.values()))
    attach_feedback(list(messages.values()))
    return {pk: messages[mid] for pk, mid in by_conversation.items() if mid in messages}
