"""Writes of the turn engine: start, stream, finish, cancel and recover turns.

The conversation row holds the turn lock (`active_turn_id`). Every write a turn
makes after it started checks, under a row lock, that it still holds it; a
clear, a delete or the recovery sweeper takes the lock away and the turn's
later writes become no-ops (`TurnLost`) instead of writing into a history that
moved on.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone
from langchain_core.messages import AIMessage, BaseMessage

from conversations import tree
from conversations.codec import encode_message, text_of
from conversations.effects import emit, record_message_change, reply_ended, write
from conversations.events import (
    EventType,
    branch_changed_event,
    conversation_event,
    message_event,
)
from conversations.models import (
    Conversation,
    ConversationMessage,
    MessageRole,
    MessageStatus,
)
from conversations.selectors import active_path, in_history_order, message_of, paused_replies
from conversations.services.messages import build_message
from conversations.usage import services as usage
from core.errors import (
    IdempotencyKeyReused,
    NoActiveTurn,
    NothingToRegenerate,
    TurnInProgress,
    ValidationFailed,
)

INTERRUPTED_ERROR = {
    "code": "interrupted",
    "message": "The reply was interrupted because its worker stopped.",
}


class TurnLost(Exception):
    """The turn no longer holds its conversation's lock (cleared, deleted or recovered)."""


@dataclass
class TurnStart:
    """What a started (or, for a repeated client_message_id, existing) turn consists of."""

    turn_id: uuid.UUID
    human_message: ConversationMessage
    # None for a queued message (its turn has not begun) or one whose turn never began.
    ai_message: ConversationMessage | None
    existing: bool = False
    # The human message was queued behind the running turn (on_busy "enqueue").
    queued: bool = False
    # It holds a usage-quota reservation (`usage.admit`: the user has a limit).
    reserved: bool = False


def _locking() -> QuerySet[Conversation]:
    """Conversations locked for a turn write, their agent joined: every turn write
    publishes `conversation.updated`, whose payload names the agent (one query less
    per event). Only the conversation row is locked."""
    return Conversation.objects.select_for_update(of=("self",)).select_related("agent")


def _locked_conversation(conversation_id: int, turn_id: uuid.UUID) -> Conversation:
    conversation = _locking().filter(pk=conversation_id, active_turn_id=turn_id).first()
    if conversation is None:
        raise TurnLost(turn_id)
    return conversation


def existing_turn(human_message: ConversationMessage) -> TurnStart:
    """The turn that answered `human_message`: its last AI message of the human message's
    turn (a queued message's reply comes after later queued messages), else its last AI
    message before the next human one (a regenerate answers it with a new turn id)."""
    conversation_id, after = human_message.conversation_id, human_message.id
    if human_message.status == MessageStatus.QUEUED:
        return TurnStart(
            turn_id=human_message.turn_id,
            human_message=human_message,
            ai_message=None,
            existing=True,
            queued=True,
        )
    own = (
        in_history_order(conversation_id, newest_first=True)
        .filter(id__gt=after, role=MessageRole.AI, turn_id=human_message.turn_id)
        .first()
    )
    if own is not None:
        return TurnStart(
            turn_id=own.turn_id, human_message=human_message, ai_message=own, existing=True
        )
    next_human = (
        in_history_order(conversation_id, newest_first=False)
        .filter(id__gt=after, role=MessageRole.HUMAN)
        .values("id")
        .first()
    )
    replies = in_history_order(conversation_id, newest_first=True).filter(
        id__gt=after, role=MessageRole.AI
    )
    if next_human:
        replies = replies.filter(id__lt=next_human["id"])
    ai_message = replies.first()
    return TurnStart(
        turn_id=ai_message.turn_id if ai_message else human_message.turn_id,
        human_message=human_message,
        ai_message=ai_message,
        existing=True,
    )


def begin_turn(
    *,
    conversation: Conversation,
    content: BaseMessage | None,
    client_message_id: str | None = None,
    regenerate: bool = False,
    edit_of: int | None = None,
    enqueue: bool = False,
    charge: usage.Charge | None = None,
) -> TurnStart:
    """Take the conversation's turn lock and store the human message and the AI placeholder.

    Commits before returning, so the human message is stored before any
    provider is called. A repeated `client_message_id` returns the turn that
    message started instead of a second one. `regenerate` answers the last
    human message of the active branch again: the new reply is a sibling of the old
    one, which is kept (conversations/tree.py). `edit_of` (a human message's id) stores
    the human message as a new sibling of that one, answered by the turn. Either makes
    the new reply's branch the active one (`conversation.branch_changed`); neither is
    queued behind a running turn.

    While a turn runs (or messages wait in the queue: they go first), the message is
    refused with TurnInProgress, or with `enqueue` stored at once as `queued`
    (`queued=True`, no AI placeholder): `begin_queued_turn` answers it later, in order.

    With a `charge`, the turn (a queued one too) is admitted under its user's usage
    quota in the same transaction (`usage.admit`): QuotaExceeded stores nothing.
    """
    try:
        return _begin_turn(
            conversation=conversation,
            content=content,
            client_message_id=client_message_id,
            regenerate=regenerate,
            edit_of=edit_of,
            enqueue=enqueue,
            charge=charge,
        )
    except IntegrityError:
        # Another request stored the same client_message_id first.
        human = ConversationMessage.objects.get(
            conversation_id=conversation.pk, client_message_id=client_message_id
        )
        return _repeated_turn(human, content)


def _repeated_turn(human: ConversationMessage, content: BaseMessage | None) -> TurnStart:
    # As with Stripe's idempotency keys, a key names one request: reusing it
    # for other content is a client bug, not a retry.
    if content is not None and human.text != text_of(content):
        raise IdempotencyKeyReused()
    return existing_turn(human)


@write
def _begin_turn(
    *,
    conversation: Conversation,
    content: BaseMessage | None,
    client_message_id: str | None,
    regenerate: bool,
    edit_of: int | None = None,
    enqueue: bool = False,
    charge: usage.Charge | None = None,
) -> TurnStart:
    locked = _locking().get(pk=conversation.pk)
    branching = regenerate or edit_of is not None
    if client_message_id:
        human = locked.messages.filter(client_message_id=client_message_id).first()
        if human is not None:
            return _repeated_turn(human, content)
    if locked.active_turn_id is not None or has_queued_messages(locked.pk):
        if enqueue and not branching:
            turn_id = uuid.uuid4()
            reserved = _admit(locked, turn_id, charge)
            return replace(_enqueue(locked, content, client_message_id, turn_id), reserved=reserved)
        raise TurnInProgress()
    turn_id = uuid.uuid4()
    now = timezone.now()
    if regenerate:
        human = active_path(locked.pk, newest_first=True).filter(role=MessageRole.HUMAN).first()
        if human is None:
            raise NothingToRegenerate()
    edited = _editable(locked, edit_of) if edit_of is not None else None
    reserved = _admit(locked, turn_id, charge)
    # Messages whose sibling list grew: their payloads changed (the changes feed).
    resized: list[int] = []
    if not regenerate:
        human = build_message(
            conversation=locked,
            message=content,
            turn_id=turn_id,
            client_message_id=client_message_id or None,
            created_at=now,
        )
        if edited is not None:
            resized = tree.add_sibling(locked, human, parent_id=edited.parent_id)
        else:
            tree.append_on_leaf(locked, human)
    ai = build_message(
        conversation=locked,
        message=AIMessage(content=""),
        status=MessageStatus.STREAMING,
        turn_id=turn_id,
        created_at=now,
    )
    if regenerate:
        resized = tree.add_sibling(locked, ai, parent_id=human.pk)
    else:
        tree.append_on_leaf(locked, ai)
    locked.active_turn_id = turn_id
    locked.active_turn_heartbeat_at = now
    locked.cancel_requested = False
    locked.message_count += (1 if not regenerate else 0) + 1
    locked.last_message_at = now
    locked.activity_at = now
    locked.save()
    if not regenerate:
        emit(message_event(EventType.MESSAGE_CREATED, human), user_id=locked.user_id)
    emit(message_event(EventType.MESSAGE_CREATED, ai), user_id=locked.user_id)
    if branching:
        for message in ConversationMessage.objects.filter(pk__in=resized):
            record_message_change(message)
        emit(branch_changed_event(locked), user_id=locked.user_id)
    emit(conversation_event(EventType.CONVERSATION_UPDATED, locked), user_id=locked.user_id)
    return TurnStart(turn_id=turn_id, human_message=human, ai_message=ai, reserved=reserved)


def _editable(locked: Conversation, message_id: int) -> ConversationMessage:
    """The human message of `locked` that an edit replaces (NotFound otherwise: another
    conversation's message is not this user's to see)."""
    edited = message_of(locked, message_id)
    if edited.role != MessageRole.HUMAN:
        raise ValidationFailed.for_field(
            "message_id", "not_human", "Only a human message can be edited."
        )
    return edited


def _admit(locked: Conversation, turn_id: uuid.UUID, charge: usage.Charge | None) -> bool:
    """The usage quota's admission, before anything of the turn is stored; whether it
    took a reservation."""
    if charge is None:
        return False
    return usage.admit(
        user_id=locked.user_id, conversation_id=locked.pk, turn_id=turn_id, prices=charge.prices
    )


def has_queued_messages(conversation_id: int) -> bool:
    """Whether human messages wait for their turn (one lookup in the msg_queued index)."""
    return ConversationMessage.objects.filter(
        conversation_id=conversation_id, status=MessageStatus.QUEUED
    ).exists()


def _enqueue(
    locked: Conversation,
    content: BaseMessage | None,
    client_message_id: str | None,
    turn_id: uuid.UUID,
) -> TurnStart:
    """Store a human message as `queued`, with the id of the turn that will answer it."""
    now = timezone.now()
    human = build_message(
        conversation=locked,
        message=content,
        status=MessageStatus.QUEUED,
        turn_id=turn_id,
        client_message_id=client_message_id or None,
        created_at=now,
    )
    tree.append_on_leaf(locked, human)
    locked.message_count += 1
    locked.last_message_at = now
    locked.activity_at = now
    locked.save()
    emit(message_event(EventType.MESSAGE_CREATED, human), user_id=locked.user_id)
    emit(conversation_event(EventType.CONVERSATION_UPDATED, locked), user_id=locked.user_id)
    return TurnStart(turn_id=turn_id, human_message=human, ai_message=None, queued=True)


@write
def begin_queued_turn(*, conversation_id: int) -> TurnStart | None:
    """Begin the turn of the oldest queued message, if the conversation is free.

    Called when a turn ends and by the periodic sweep (a process that died between
    turns leaves its queue in the database). Under the row lock, so of several callers
    one begins it and the others get None. The message becomes `complete`
    (`message.completed`), its AI placeholder is stored, and the lock taken, in one
    transaction.
    """
    locked = _locking().filter(pk=conversation_id).first()
    if locked is None or locked.active_turn_id is not None:
        return None
    human = (
        in_history_order(conversation_id, newest_first=False)
        .filter(status=MessageStatus.QUEUED)
        .first()
    )
    if human is None:
        return None
    now = timezone.now()
    human.status = MessageStatus.COMPLETE
    human.save(update_fields=["status", "updated_at"])
    ai = build_message(
        conversation=locked,
        message=AIMessage(content=""),
        status=MessageStatus.STREAMING,
        turn_id=human.turn_id,
        created_at=now,
    )
    tree.append_on_leaf(locked, ai)
    locked.active_turn_id = human.turn_id
    locked.active_turn_heartbeat_at = now
    locked.cancel_requested = False
    locked.message_count += 1
    locked.last_message_at = now
    locked.activity_at = now
    locked.save()
    emit(message_event(EventType.MESSAGE_COMPLETED, human), user_id=locked.user_id)
    emit(message_event(EventType.MESSAGE_CREATED, ai), user_id=locked.user_id)
    emit(conversation_event(EventType.CONVERSATION_UPDATED, locked), user_id=locked.user_id)
    return TurnStart(turn_id=human.turn_id, human_message=human, ai_message=ai)


def conversations_with_waiting_queue() -> list[int]:
    """Conversations whose queued messages wait while no turn runs (the sweep's work)."""
    return list(
        ConversationMessage.objects.filter(
            status=MessageStatus.QUEUED, conversation__active_turn_id__isnull=True
        )
        .values_list("conversation_id", flat=True)
        .distinct()
    )


@write
def add_turn_message(
    *,
    conversation_id: int,
    turn_id: uuid.UUID,
    message: BaseMessage,
    status: str = MessageStatus.COMPLETE,
    model: str = "",
) -> ConversationMessage:
    """Store another message of a running turn (a tool result, the next AI reply)."""
    conversation = _locked_conversation(conversation_id, turn_id)
    now = timezone.now()
    row = build_message(
        conversation=conversation,
        message=message,
        status=status,
        turn_id=turn_id,
        model=model,
        created_at=now,
    )
    tree.append_on_leaf(conversation, row)
    conversation.message_count += 1
    conversation.last_message_at = now
    conversation.activity_at = now
    conversation.active_turn_heartbeat_at = now
    conversation.save(
        update_fields=[
            "active_leaf_id",
            "message_count",
            "last_message_at",
            "activity_at",
            "active_turn_heartbeat_at",
            "updated_at",
        ]
    )
    emit(message_event(EventType.MESSAGE_CREATED, row), user_id=conversation.user_id)
    return row


@write
def finish_message(
    *,
    conversation_id: int,
    turn_id: uuid.UUID,
    message_id: int,
    message: BaseMessage,
    status: str,
    model: str = "",
    error: dict[str, str] | None = None,
    release_lock: bool = False,
    charge: usage.Charge | None = None,
) -> ConversationMessage:
    """End a streaming message as complete, cancelled or failed, with its lossless content.

    With `release_lock`, the turn ends in the same transaction, so a client that
    sees the final event can start the next turn at once. With a `charge`, the model
    call's tokens (`usage_metadata`) are recorded in it too (`usage.record_call`).
    """
    conversation = _locked_conversation(conversation_id, turn_id)
    if charge is not None:
        if release_lock and charge.reserved:
            # Under the quota lock, its usage recorded and its reservation gone in one
            # transaction: an admission never sees the turn neither reserved nor used.
            usage.settle_reservation(user_id=charge.user_id, turn_id=turn_id)
        usage.record_call(
            charge=charge, conversation_id=conversation_id, message_id=message_id, message=message
        )
    row = ConversationMessage.objects.get(pk=message_id)
    finished = build_message(conversation=conversation, message=message)
    row.content = finished.content
    row.text = finished.text
    row.usage = finished.usage
    row.status = status
    row.model = model or row.model
    row.error = error
    row.save(update_fields=["content", "text", "usage", "status", "model", "error", "updated_at"])
    event_type = (
        EventType.MESSAGE_FAILED if status == MessageStatus.FAILED else EventType.MESSAGE_COMPLETED
    )
    emit(message_event(event_type, row), user_id=conversation.user_id)
    if release_lock:
        _release(conversation)
        reply_ended(row, conversation)
    return row


@write
def end_turn(*, conversation_id: int, turn_id: uuid.UUID) -> bool:
    """Release the turn lock if this turn still holds it."""
    conversation = _locking().filter(pk=conversation_id, active_turn_id=turn_id).first()
    if conversation is None:
        return False
    _release(conversation)
    return True


def _release(conversation: Conversation) -> None:
    conversation.active_turn_id = None
    conversation.active_turn_heartbeat_at = None
    conversation.cancel_requested = False
    conversation.save(
        update_fields=[
            "active_turn_id",
            "active_turn_heartbeat_at",
            "cancel_requested",
            "updated_at",
        ]
    )
    emit(
        conversation_event(EventType.CONVERSATION_UPDATED, conversation),
        user_id=conversation.user_id,
    )


@dataclass
class TurnTick:
    """One running turn's periodic write: its partial text (None: unchanged) into
    message `message_id` and, when `touch`, its heartbeat (a heartbeat alone needs no
    message)."""

    conversation_id: int
    turn_id: uuid.UUID
    text: str | None
    touch: bool
    message_id: int | None = None


def _save_partial_texts(saves: list[TurnTick], now: Any) -> None:
    """One UPDATE for many partial texts, the values travelling as arrays: `unnest` on
    PostgreSQL, a JSON array through `json_each` on SQLite. Django's `bulk_update`
    builds a CASE expression per row, and compiling it for hundreds of rows cost more
    CPU than the writes it replaced."""
    table = connection.ops.quote_name(ConversationMessage._meta.db_table)
    if connection.vendor == "postgresql":
        sql = f"""
            UPDATE {table} AS m SET "text" = v.text, "updated_at" = %s
              FROM unnest(%s::bigint[], %s::uuid[], %s::text[]) AS v(id, turn_id, text)
             WHERE m.id = v.id AND m.turn_id = v.turn_id AND m.status = %s
            """
        values = [
            [tick.message_id for tick in saves],
            [tick.turn_id for tick in saves],
            [tick.text for tick in saves],
        ]
    else:
        # SQLite keeps a UUID as its 32 hex digits (Django's UUIDField).
        sql = f"""
            UPDATE {table} AS m SET "text" = v.text, "updated_at" = %s
              FROM (SELECT json_extract(value, '$[0]') AS id,
                           json_extract(value, '$[1]') AS turn_id,
                           json_extract(value, '$[2]') AS text
                      FROM json_each(%s)) AS v
             WHERE m.id = v.id AND m.turn_id = v.turn_id AND m.status = %s
            """
        values = [json.dumps([[t.message_id, t.turn_id.hex, t.text] for t in saves])]
    with connection.cursor() as cursor:
        stamp = connection.ops.adapt_datetimefield_value(now)
        cursor.execute(sql, [stamp, *values, MessageStatus.STREAMING])


def tick_turns(*, ticks: list[TurnTick]) -> dict[uuid.UUID, str]:
    """The periodic writes of many running turns in one transaction (one commit).

    Partial texts go in one UPDATE; heartbeats in one SELECT and one UPDATE. Returns
    each turn's status: `running`, `cancel` (requested) or `lost` (the lock is gone)
    (only heartbeats learn the two last). The turn engine batches the ticks of all
    turns of a process here (`conversations.turns.ticks`): per-turn UPDATEs, each
    its own commit through the process's one sync thread, were what limited the
    number of concurrent replies (bench/streaming.py).
    """
    now = timezone.now()
    statuses = {tick.turn_id: "running" for tick in ticks}
    with transaction.atomic():
        saves = [tick for tick in ticks if tick.text is not None]
        if saves:
            _save_partial_texts(saves, now)
        touches = [tick for tick in ticks if tick.touch]
        if touches:
            held = {
                pk: (turn_id, cancel)
                for pk, turn_id, cancel in Conversation.objects.filter(
                    pk__in=[tick.conversation_id for tick in touches]
                ).values_list("pk", "active_turn_id", "cancel_requested")
            }
            running = []
            for tick in touches:
                turn_id, cancel = held.get(tick.conversation_id, (None, False))
                if turn_id != tick.turn_id:
                    statuses[tick.turn_id] = "lost"
                elif cancel:
                    statuses[tick.turn_id] = "cancel"
                else:
                    running.append(tick)
            if running:
                Conversation.objects.filter(
                    pk__in=[tick.conversation_id for tick in running],
                    active_turn_id__in=[tick.turn_id for tick in running],
                    cancel_requested=False,
                ).update(active_turn_heartbeat_at=now)
    return statuses


def request_cancel(*, conversation: Conversation) -> uuid.UUID:
    """Ask the running turn of a conversation to stop; returns its turn id.

    The flag is read by the turn's heartbeat wherever the turn runs; the
    engine also signals a turn running in this process at once.
    """
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.active_turn_id is None:
            raise NoActiveTurn()
        locked.cancel_requested = True
        # Not a change clients see (the reply's end is): updated_at stays.
        locked.save(update_fields=["cancel_requested"])
    return locked.active_turn_id


def recover_interrupted_turns(*, stale_after: float) -> int:
    """End turns whose worker stopped heartbeating as `failed`/`interrupted`; release locks.

    Returns how many messages were ended. Run at startup, periodically, and by
    `manage.py recover_turns`.
    """
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    # A turn paused for tool approval has no worker to lose: it waits for decisions
    # (conversations.approvals), not for a heartbeat.
    paused = paused_replies(OuterRef("pk"), OuterRef("active_turn_id"))
    stale = list(
        Conversation.objects.filter(
            active_turn_id__isnull=False, active_turn_heartbeat_at__lt=cutoff
        )
        .exclude(Exists(paused))
        .values_list("pk", "active_turn_id")
    )
    ended = sum(_recover_turn(pk, turn_id) for pk, turn_id in stale)
    # Streaming rows whose turn no longer holds any lock (e.g. a crash between
    # two writes of an old version): end them too.
    orphans = ConversationMessage.objects.filter(
        status=MessageStatus.STREAMING, updated_at__lt=cutoff
    ).exclude(conversation__active_turn_id=F("turn_id"))
    for row in orphans.select_related("conversation"):
        ended += _fail_interrupted(row)
    return ended


@write
def _recover_turn(conversation_id: int, turn_id: uuid.UUID) -> int:
    conversation = (
        Conversation.objects.select_for_update()
        .filter(pk=conversation_id, active_turn_id=turn_id)
        .first()
    )
    if conversation is None:
        return 0
    if paused_replies(conversation_id, turn_id).exists():
        return 0  # paused for approval since the sweep read it
    rows = list(conversation.messages.filter(turn_id=turn_id, status=MessageStatus.STREAMING))
    for row in rows:
        _fail_interrupted(row)
    end_turn(conversation_id=conversation_id, turn_id=turn_id)
    return len(rows)


@write
def _fail_interrupted(row: ConversationMessage) -> int:
    row.status = MessageStatus.FAILED
    row.error = INTERRUPTED_ERROR
    row.content = encode_message(AIMessage(content=row.text))
    row.save(update_fields=["status", "error", "content", "updated_at"])
    emit(message_event(EventType.MESSAGE_FAILED, row), user_id=row.user_id)
    reply_ended(row, row.conversation)
    return 1
