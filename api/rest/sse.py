"""A turn's live events as Server-Sent Events, read from the Channels layer.

The stream joins the conversation's group on a fresh channel *before* the
turn starts (so no event is missed), forwards the turn's events unchanged
(the shapes of `conversations.events`), and ends after the turn's final
`message.completed` / `message.failed`. The turn runs in its own task: a
client that goes away only stops the listening.

Each event is written as::

    event: message.delta
    id: 12:240
    data: {"type": "message.delta", "conversation_id": 1, "message_id": 12, ...}

`id` is the event's stable position in the conversation (`conversations.resume`):
`<message_id>` when the client holds every message up to it whole,
`<message_id>:<offset>` while message `message_id` streams and the client holds
`offset` characters of it. Giving it back (`Last-Event-ID`, `?after_id=`) to the
conversation's event stream (`open_conversation_stream`) continues exactly there.
Deltas are made to join up with what the client holds (no offset gap, nothing
doubled). Comment lines (`: keepalive`) keep idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Exists, OuterRef

from conversations import selectors
from conversations.events import EventType, conversation_event, conversation_group
from conversations.models import Conversation, ConversationMessage, MessageRole, MessageStatus
from conversations.resume import FINAL_TYPES, Position, StreamTracker
from conversations.turns import TurnHandle, wait_for_result
from core.errors import NotFound

# How often an idle stream checks that its turn is still running.
POLL_SECONDS = 1.0
END_TYPES = {str(EventType.CONVERSATION_CLEARED), str(EventType.CONVERSATION_DELETED)}


__all__ = ["TurnFilter", "format_event", "open_conversation_stream", "open_turn_stream"]


def format_event(event: dict[str, Any], event_id: Position | str | int) -> bytes:
    """One SSE frame (JSON never contains a raw newline, so `data` is one line)."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\nid: {event_id}\ndata: {data}\n\n".encode()


class TurnFilter:
    """Which events of the conversation's group belong to one turn, and when it is over.

    Forwarded: `message.*` events of the turn's messages and the
    `conversation.branch_changed` that made its reply the active leaf (regenerate,
    edit). Over: a `conversation.updated` whose `active_turn_id` is no longer this
    turn, once the turn's AI reply was
    final (not forwarded, so the last event is that final reply); or a
    `conversation.cleared` / `conversation.deleted` (forwarded: the turn lost
    its conversation).
    """

    def __init__(self, handle: TurnHandle) -> None:
        self.turn_id = str(handle.turn_id)
        self.message_ids = {m.id for m in (handle.human_message, handle.ai_message) if m}
        self.final_seen = False
        self.over = False

    def accept(self, event: dict[str, Any]) -> bool:
        """True when `event` is forwarded; sets `over` when the turn ended."""
        kind = event.get("type")
        if kind == EventType.MESSAGE_DELTA:
            return event.get("message_id") in self.message_ids
        if kind == EventType.CONVERSATION_BRANCH_CHANGED:
            # A regenerate or an edit: the turn's reply is the new active leaf.
            return event.get("active_leaf_id") in self.message_ids
        if kind in END_TYPES:
            self.over = True
            return True
        if kind == EventType.TOOL_APPROVAL_REQUESTED and event.get("turn_id") == self.turn_id:
            # The turn paused for the user's approval: this stream ends here (the turn
            # holds its lock, but nothing more comes until a decision, maybe hours later).
            self.over = True
            return True
        if kind == EventType.CONVERSATION_UPDATED:
            active = (event.get("conversation") or {}).get("active_turn_id")
            self.over = self.final_seen and active != self.turn_id
            return False
        message = event.get("message") or {}
        if message.get("turn_id") != self.turn_id:
            return False
        self.message_ids.add(message.get("id"))
        if kind in FINAL_TYPES and message.get("role") == MessageRole.AI:
            # With tool calls a turn has several AI replies; the lock release
            # (conversation.updated) that follows the last one ends the turn.
            self.final_seen = True
        return True


async def _turn_is_running(handle: TurnHandle) -> bool:
    """Whether the turn still holds its conversation's lock (in any process), or has not
    begun yet (its human message waits in the queue)."""
    conversation_id = handle.human_message.conversation_id
    # Holding the lock, unless it paused for approval (it then runs nowhere): one query.
    if (
        await Conversation.objects.filter(pk=conversation_id, active_turn_id=handle.turn_id)
        .exclude(Exists(selectors.paused_replies(OuterRef("pk"), OuterRef("active_turn_id"))))
        .aexists()
    ):
        return True
    return await ConversationMessage.objects.filter(
        pk=handle.human_message.pk, status=MessageStatus.QUEUED
    ).aexists()


async def _turn_has_ended(handle: TurnHandle) -> bool:
    if handle.task is not None:
        return handle.task.done()
    # Running in another process (a repeated request): the lock tells.
    return not await _turn_is_running(handle)


async def _leave(layer: Any, group: str, channel: str, receiving: asyncio.Task | None) -> None:
    # Cancelling a pending receive() is how the Redis layers drop a channel
    # created by new_channel(); there is no other call for it.
    if receiving is None:
        receiving = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0)
    receiving.cancel()
    with contextlib.suppress(BaseException):
        await receiving
    await layer.group_discard(group, channel)


async def open_turn_stream(
    *, conversation_id: int, start: Callable[[], Awaitable[TurnHandle]]
) -> tuple[TurnHandle, AsyncIterator[bytes]]:
    """Join the conversation's group, start the turn, and return its event stream.

    Errors of `start` (409, validation) propagate before any byte is sent, so
    they are ordinary JSON error responses.
    """
    stream = _turn_stream(conversation_id=conversation_id, start=start)
    # The generator is primed: it has joined the group and started the turn.
    # If the response is never iterated, its finally still runs when the
    # generator is garbage collected (asyncio's async-generator finalizer).
    handle = await anext(stream)
    return handle, stream  # type: ignore[return-value]


async def _turn_stream(
    *, conversation_id: int, start: Callable[[], Awaitable[TurnHandle]]
) -> AsyncIterator[Any]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = conversation_group(conversation_id)
    await layer.group_add(group, channel)
    receiving: asyncio.Task | None = None
    try:
        handle = await start()
        yield handle
        tracker = StreamTracker()
        turn = TurnFilter(handle)
        if handle.existing:
            # A repeat: the turn's stored messages first (all of them: with tool rounds
            # there are several replies), then whatever is still live, joined up with
            # the stored text (the tracker fills what the partial save lagged). Whether
            # the turn still runs is read before the messages: if it ended, they are
            # final; if not, its last events are already queued on our channel.
            running = await _turn_is_running(handle)
            human = handle.human_message
            tracker = StreamTracker(Position(human.id - 1))
            async for event in tracker.resume(
                human.conversation_id,
                keep=lambda row: row.id == human.id or row.turn_id == handle.turn_id,
            ):
                yield format_event(event, tracker.position)
            if not running:
                return
            turn.message_ids |= set(tracker.held) | tracker.final
        keepalive = settings.CONFAB_SSE_KEEPALIVE_SECONDS
        last_write = time.monotonic()
        ended_polls = 0
        receiving = asyncio.ensure_future(layer.receive(channel))
        while not turn.over:
            # One long-lived receive() task: cancelling a receive() would drop
            # the channel on the Redis layers.
            done, _ = await asyncio.wait({receiving}, timeout=POLL_SECONDS)
            if done:
                message = receiving.result()
                receiving = asyncio.ensure_future(layer.receive(channel))
                event = message.get("event") if isinstance(message, dict) else None
                if isinstance(event, dict) and turn.accept(event):
                    event = await tracker.live(event)
                    if event is not None:
                        last_write = time.monotonic()
                        yield format_event(event, tracker.position)
                continue
            if await _turn_has_ended(handle):
                ended_polls += 1
                if ended_polls > 1:
                    # The turn ended but its last events never came (the layer
                    # dropped them): finish from the stored reply.
                    result = await wait_for_result(handle)
                    if result.ai_message is not None:
                        event = tracker.snapshot(result.ai_message)
                        yield format_event(event, tracker.position)
                    return
            if time.monotonic() - last_write >= keepalive:
                last_write = time.monotonic()
                yield b": keepalive\n\n"
    finally:
        await _leave(layer, group, channel, receiving)


async def open_conversation_stream(
    *, user: Any, conversation_id: int, position: Position
) -> AsyncIterator[bytes]:
    """A conversation's events from `position` on, as SSE: the stored messages after it
    (the rest of a message still streaming joins up with what the client holds), then
    every live event of the conversation, until it is deleted or the client leaves.
    The first event is a `conversation.updated` snapshot, sent once the server listens
    (as the GraphQL subscription does).

    The group is joined before the stored state is read, so nothing published in
    between is missed (what is seen twice is dropped by the tracker)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = conversation_group(conversation_id)
    await layer.group_add(group, channel)
    return _conversation_stream(layer, group, channel, user, conversation_id, position)


async def _conversation_stream(
    layer: Any, group: str, channel: str, user: Any, conversation_id: int, position: Position
) -> AsyncIterator[bytes]:
    receiving: asyncio.Task | None = None
    try:
        tracker = StreamTracker(position)
        try:
            conversation = await selectors.aget_conversation(
                user=user, conversation_id=conversation_id
            )
        except NotFound:
            return
        yield format_event(
            conversation_event(EventType.CONVERSATION_UPDATED, conversation), tracker.position
        )
        async for event in tracker.resume(conversation_id):
            yield format_event(event, tracker.position)
        keepalive = settings.CONFAB_SSE_KEEPALIVE_SECONDS
        last_write = time.monotonic()
        receiving = asyncio.ensure_future(layer.receive(channel))
        while True:
            done, _ = await asyncio.wait({receiving}, timeout=POLL_SECONDS)
            if done:
                message = receiving.result()
                receiving = asyncio.ensure_future(layer.receive(channel))
                event = message.get("event") if isinstance(message, dict) else None
                if not isinstance(event, dict):
                    continue
                forwarded = await tracker.live(event)
                if forwarded is not None:
                    last_write = time.monotonic()
                    yield format_event(forwarded, tracker.position)
                if event.get("type") == EventType.CONVERSATION_DELETED:
                    return
                continue
            if time.monotonic() - last_write >= keepalive:
                last_write = time.monotonic()
                yield b": keepalive\n\n"
    finally:
        await _leave(layer, group, channel, receiving)
