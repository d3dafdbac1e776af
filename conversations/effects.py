"""What a write produces besides its rows, from one place.

A service that changes what a user sees declares it once, with `emit(event, user_id=)`
inside a `@write` function. From that one call come:

- the live event, published to the channel layer after the transaction commits
  (never for a rolled-back write);
- the changes-feed rows (`conversations.sync`), written in the same transaction, all
  changes of the write in one statement, just before it commits.

A write that ends a reply also says so with `reply_ended(message, conversation)`: the
outbox rows of its push notifications and webhook (`conversations.notifications`) are
written in the same transaction.

`@write` is `transaction.atomic` plus that bookkeeping; nested `@write` calls (a service
calling another) join the outermost one, which flushes once. No surface writes any of
these itself: REST, GraphQL, the websocket, the admin and commands call the services.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from django.db import transaction

from conversations.events import EventType, publish_on_commit
from conversations.models import Conversation, ConversationMessage
from conversations.notifications.services import queue_reply_ended
from conversations.sync.models import ChangeKind
from conversations.sync.services import record_changes
from core import replicas

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Effects:
    """What the current write has declared so far."""

    changes: list[tuple[int, str, int, int | None]] = field(default_factory=list)
    ended_replies: list[tuple[ConversationMessage, Conversation]] = field(default_factory=list)


_current: ContextVar[Effects | None] = ContextVar("confab_effects", default=None)


def write(function: Callable[P, R]) -> Callable[P, R]:
    """A service function: atomic, and its emitted effects recorded before it commits."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _current.get() is not None:
            return function(*args, **kwargs)
        effects = Effects()
        token = _current.set(effects)
        try:
            with transaction.atomic():
                result = function(*args, **kwargs)
                _flush(effects)
                # Their next reads from a replica wait for this commit (core/replicas.py).
                replicas.remember_writes_on_commit(change[0] for change in effects.changes)
            return result
        finally:
            _current.reset(token)

    return wrapper


def _effects() -> Effects:
    effects = _current.get()
    if effects is None:
        raise RuntimeError("effects declared outside a @write service")
    return effects


def reply_ended(message: ConversationMessage, conversation: Conversation) -> None:
    """Declare that the current write ended a turn's reply (notifications follow)."""
    _effects().ended_replies.append((message, conversation))


def emit(event: dict[str, Any], *, user_id: int) -> None:
    """Declare an event of the current write: published on commit, recorded in the
    owner's changes feed."""
    _effects().changes.extend(_changes_of(event, user_id))
    publish_on_commit(event, user_id=user_id)


_UPSERTS = {
    EventType.MESSAGE_CREATED: ChangeKind.MESSAGE_UPSERTED,
    EventType.MESSAGE_COMPLETED: ChangeKind.MESSAGE_UPSERTED,
    EventType.MESSAGE_FAILED: ChangeKind.MESSAGE_UPSERTED,
    EventType.CONVERSATION_CREATED: ChangeKind.CONVERSATION_UPSERTED,
    EventType.CONVERSATION_UPDATED: ChangeKind.CONVERSATION_UPSERTED,
    # The feed's conversation carries `active_leaf_id`; its messages their `parent_id`.
    EventType.CONVERSATION_BRANCH_CHANGED: ChangeKind.CONVERSATION_UPSERTED,
}


def record_message_change(message: ConversationMessage) -> None:
    """Record a change of a stored message in its owner's changes feed, without a live
    event (feedback: the payload changed, but no live surface announces ratings)."""
    _effects().changes.append(
        (message.user_id, ChangeKind.MESSAGE_UPSERTED, message.conversation_id, message.id)
    )


def _changes_of(event: dict[str, Any], user_id: int) -> list[tuple[int, str, int, int | None]]:
    """(user, kind, conversation id, message id) of the feed changes an event stands for."""
    kind, conversation_id = event["type"], event["conversation_id"]
    if kind in _UPSERTS and kind.startswith("message."):
        return [(user_id, _UPSERTS[kind], conversation_id, event["message"]["id"])]
    if kind in _UPSERTS:
        return [(user_id, _UPSERTS[kind], conversation_id, None)]
    if kind == EventType.MESSAGE_DELETED:
        return [
            (user_id, ChangeKind.MESSAGE_DELETED, conversation_id, message_id)
            for message_id in event["message_ids"]
        ]
    if kind == EventType.CONVERSATION_CLEARED:
        # The conversation's counters changed too: its new state follows the tombstone.
        return [
            (user_id, ChangeKind.CONVERSATION_CLEARED, conversation_id, None),
            (user_id, ChangeKind.CONVERSATION_UPSERTED, conversation_id, None),
        ]
    if kind == EventType.CONVERSATION_DELETED:
        return [(user_id, ChangeKind.CONVERSATION_DELETED, conversation_id, None)]
    return []  # deltas and the like: live only


def _flush(effects: Effects) -> None:
    if effects.changes:
        record_changes(changes=_without_repeats(effects.changes))
    for message, conversation in effects.ended_replies:
        queue_reply_ended(message=message, conversation=conversation)


def _without_repeats(
    changes: list[tuple[int, str, int, int | None]],
) -> list[tuple[int, str, int, int | None]]:
    """Each upsert once, at its last place: the feed reads the object as it is now."""
    last = {change: index for index, change in enumerate(changes)}
    return [
        change
        for index, change in enumerate(changes)
        if not change[1].endswith(".upserted") or last[change] == index
    ]
