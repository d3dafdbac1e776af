"""Every read a surface pages or filters. Owner scoping is built in: each
function takes the requesting user and never returns another user's rows, so
a surface cannot forget the check. Someone else's object is `NotFound`,
exactly like a missing one.

History pages are keyset pages on the message id, served by the
`(conversation_id, id)` index: no OFFSET, no COUNT, the same cost at any depth.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery

from conversations import history_pages
from conversations.errors import NotFound, ValidationFailed
from conversations.models import Agent, Conversation, ConversationMessage, MessageStatus

MAX_SEARCH_CHARS = 200


# --- parameters -------------------------------------------------------------


def parse_limit(value: Any, *, field: str = "limit") -> int:
    """A page size from user input: an integer in 1..CONFAB_MAX_PAGE_SIZE (default if None)."""
    maximum = settings.CONFAB_MAX_PAGE_SIZE
    if value is None or value == "":
        return min(settings.CONFAB_DEFAULT_PAGE_SIZE, maximum)
    try:
        limit = int(value)
        if isinstance(value, float | bool) or str(value).strip() != str(limit):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationFailed.for_field(field, "invalid", f"{field} must be an integer.") from None
    if not 1 <= limit <= maximum:
        raise ValidationFailed.for_field(
            field, "out_of_range", f"{field} must be between 1 and {maximum}."
        )
    return limit


def parse_message_id(value: Any, *, field: str) -> int | None:
    """A message-id cursor from user input (any id, even of a deleted message)."""
    if value is None or value == "":
        return None
    try:
        message_id = int(value)
        if isinstance(value, float | bool) or str(value).strip() != str(message_id):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} must be a message id (a positive integer)."
        ) from None
    if not 0 <= message_id <= 2**63 - 1:
        raise ValidationFailed.for_field(field, "out_of_range", f"{field} is out of range.")
    return message_id


def parse_object_id(value: Any) -> int:
    """A primary key from user input; anything that is not one is simply not found."""
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise NotFound() from None
    if not 1 <= pk <= 2**63 - 1:
        raise NotFound()
    return pk


# --- agents -----------------------------------------------------------------


def list_agents() -> QuerySet[Agent]:
    return Agent.objects.filter(is_active=True).order_by("name", "id")


def agents_by_slug(*, slugs: list[str]) -> dict[str, Agent]:
    """Agents by slug in one query, inactive ones included: a conversation keeps its agent."""
    if not slugs:
        return {}
    return {agent.slug: agent for agent in Agent.objects.filter(slug__in=slugs)}


def get_agent(*, slug: str) -> Agent:
    agent = list_agents().filter(slug=slug).first()
    if agent is None:
        raise NotFound("Agent not found.")
    return agent


# --- conversations ----------------------------------------------------------


def conversations_of(user: Any) -> QuerySet[Conversation]:
    """The base queryset of every conversation read: the user's own, agent joined."""
    if not getattr(user, "is_authenticated", False):
        return Conversation.objects.none()
    return Conversation.objects.filter(user_id=user.pk).select_related("agent")


def get_conversation(*, user: Any, conversation_id: Any) -> Conversation:
    """The user's conversation, or NotFound (also for another user's)."""
    pk = parse_object_id(conversation_id)
    conversation = conversations_of(user).filter(pk=pk).first()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


async def aget_conversation(*, user: Any, conversation_id: Any) -> Conversation:
    pk = parse_object_id(conversation_id)
    conversation = await conversations_of(user).filter(pk=pk).afirst()
    if conversation is None:
        raise NotFound("Conversation not found.")
    return conversation


@dataclass
class ConversationPage:
    results: list[Conversation]
    next_cursor: str | None
    has_more: bool


def encode_conversation_cursor(conversation: Conversation) -> str:
    raw = f"{conversation.activity_at.isoformat()}|{conversation.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_conversation_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        activity, _, pk = base64.urlsafe_b64decode(padded).decode().partition("|")
        return datetime.fromisoformat(activity), int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed.for_field("cursor", "invalid", "cursor is not valid.") from None


def filter_conversations(
    *,
    user: Any,
    archived: bool | None = None,
    agent: str | None = None,
    q: str | None = None,
) -> QuerySet[Conversation]:
    """The user's conversations with the list filters applied, newest activity first."""
    queryset = conversations_of(user)
    if archived is not None:
        queryset = queryset.filter(archived_at__isnull=not archived)
    if agent:
        queryset = queryset.filter(agent__slug=agent)
    if q:
        if len(q) > MAX_SEARCH_CHARS:
            raise ValidationFailed.for_field(
                "q", "too_long", f"q is longer than {MAX_SEARCH_CHARS} characters."
            )
        queryset = queryset.filter(title__icontains=q)
    return queryset.order_by("-activity_at", "-id")


def conversation_page(
    *,
    user: Any,
    cursor: str | None = None,
    limit: Any = None,
    archived: bool | None = None,
    agent: str | None = None,
    q: str | None = None,
) -> ConversationPage:
    """One page of the conversation list, keyset on (activity_at, id) descending."""
    size = parse_limit(limit)
    queryset = filter_conversations(user=user, archived=archived, agent=agent, q=q)
    if cursor:
        activity, pk = decode_conversation_cursor(cursor)
        queryset = queryset.filter(Q(activity_at__lt=activity) | Q(activity_at=activity, id__lt=pk))
    rows = list(queryset[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    attach_last_messages(rows)
    return ConversationPage(
        results=rows,
        next_cursor=encode_conversation_cursor(rows[-1]) if has_more else None,
        has_more=has_more,
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
                .order_by(*NEWEST_FIRST)
                .values("id")[:1]
            )
        )
        .values_list("pk", "last_id")
    )
    by_conversation = {pk: mid for pk, mid in last_ids if mid is not None}
    messages = ConversationMessage.objects.in_bulk(list(by_conversation.values()))
    return {pk: messages[mid] for pk, mid in by_conversation.items() if mid in messages}


# --- messages ---------------------------------------------------------------


@dataclass
class MessagePage:
    """A history page: `results` oldest first, and whether pages exist on each side."""

    results: list[ConversationMessage] | list[history_pages.MessageRow]
    has_older: bool
    has_newer: bool

    @property
    def older_cursor(self) -> int | None:
        return self.results[0].id if self.has_older and self.results else None

    @property
    def newer_cursor(self) -> int | None:
        return self.results[-1].id if self.has_newer and self.results else None


NEWEST_FIRST = ("-id",)


def messages_of(conversation: Conversation) -> QuerySet[ConversationMessage]:
    return ConversationMessage.objects.filter(conversation_id=conversation.pk)


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


def message_page(
    *,
    conversation: Conversation,
    before: Any = None,
    after: Any = None,
    limit: Any = None,
) -> MessagePage:
    """A keyset page of a conversation's history (the caller got `conversation` from
    `get_conversation`, which checked ownership).

    Default: the newest page. `before=<id>`: the page just older than that id;
    `after=<id>`: the page just newer. One indexed query whatever the depth
    (conversations/history_pages.py).
    """
    return _message_page(
        conversation_id=conversation.pk,
        owner_id=conversation.user_id,
        before=before,
        after=after,
        limit=limit,
    )


def user_message_page(
    *,
    user: Any,
    conversation_id: Any,
    before: Any = None,
    after: Any = None,
    limit: Any = None,
    as_rows: bool = False,
) -> MessagePage:
    """`message_page` of the user's conversation by id, ownership checked in the same
    statement: one query for a page with rows. NotFound for someone else's or a
    missing conversation (told apart from an empty page by a second query),
    whatever the other arguments.

    `as_rows`: results are read-only `history_pages.MessageRow`s for a page that is
    only written out as JSON (their JSON columns stay the database's text)."""
    if not getattr(user, "is_authenticated", False):
        raise NotFound("Conversation not found.")
    pk = parse_object_id(conversation_id)
    try:
        return _message_page(
            conversation_id=pk,
            owner_id=user.pk,
            before=before,
            after=after,
            limit=limit,
            as_rows=as_rows,
        )
    except ValidationFailed:
        get_conversation(user=user, conversation_id=pk)
        raise


def _message_page(
    *,
    conversation_id: int,
    owner_id: int,
    before: Any,
    after: Any,
    limit: Any,
    as_rows: bool = False,
) -> MessagePage:
    size = parse_limit(limit)
    before_id = parse_message_id(before, field="before")
    after_id = parse_message_id(after, field="after")
    if before_id is not None and after_id is not None:
        raise ValidationFailed.for_field(
            "before", "exclusive", "Use either before or after, not both."
        )
    if after_id is not None:
        shape, cursor = history_pages.AFTER, after_id
    elif before_id is not None:
        shape, cursor = history_pages.BEFORE, before_id
    else:
        shape, cursor = history_pages.NEWEST, None
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
            nearest = in_history_order(conversation_id, newest_first=backwards).filter(far)
            beyond_cursor = nearest.values("id").first() is not None
    more = len(rows) > size
    rows = rows[:size]
    if shape == history_pages.AFTER:
        return MessagePage(results=rows, has_older=beyond_cursor, has_newer=more)
    rows.reverse()
    return MessagePage(results=rows, has_older=more, has_newer=beyond_cursor)


def get_message(*, conversation: Conversation, message_id: Any) -> ConversationMessage:
    pk = parse_object_id(message_id)
    message = messages_of(conversation).filter(pk=pk).first()
    if message is None:
        raise NotFound("Message not found.")
    return message


def messages_after(
    *, conversation_id: int, after_id: int, limit: int
) -> QuerySet[ConversationMessage]:
    """Messages newer than `after_id`, oldest first (resume after a reconnect)."""
    return in_history_order(conversation_id, newest_first=False).filter(id__gt=after_id)[:limit]


def history_window(
    *, conversation_id: int, up_to_id: int, size: int
) -> QuerySet[ConversationMessage]:
    """The last `size` finished messages up to `up_to_id`, newest first (the model's window).

    Failed and streaming replies are left out: the model sees only what was
    really said.
    """
    return (
        in_history_order(conversation_id, newest_first=True)
        .filter(id__lte=up_to_id)
        .filter(Q(status=MessageStatus.COMPLETE) | Q(status=MessageStatus.CANCELLED))[:size]
    )


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
        in_history_order(conversation_id, newest_first=True).values_list("id", flat=True).afirst()
    )
