"""Where a client is in a conversation's event stream, and how to go on from there.

A *position* is what an SSE event's `id:` carries and what `Last-Event-ID` /
`?after_id=` give back: `"<message_id>"` when the client holds every message up to
that id whole (the websocket `resume {after_id}` meaning), or
`"<message_id>:<offset>"` when it holds message `message_id` up to `offset`
characters of its text while it still streams (and every message before it).

`StreamTracker` follows one client's stream: snapshots of stored messages, then live
events. It gives each event the position the client is at after it, and makes the
text of a streaming message join up exactly: a live delta that starts past what the
client holds (the stored partial text lags the live deltas by up to one partial save)
is widened with the missing piece read from the stored text, a delta that repeats
what the client holds is trimmed or dropped, and deltas of a message the client
already has final are dropped. Every streaming surface that resumes (REST SSE, the
GraphQL subscription) goes through it, so they all rebuild the same text.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError

from conversations import selectors
from conversations.events import EventType, snapshot_event
from conversations.models import ConversationMessage, MessageStatus
from core.errors import ValidationFailed

POSITION_PATTERN = re.compile(r"^(\d{1,18})(?::(\d{1,9}))?$")
RESUME_PAGE = 200
FINAL_TYPES = {str(EventType.MESSAGE_COMPLETED), str(EventType.MESSAGE_FAILED)}


@dataclass(frozen=True)
class Position:
    """A point in a conversation's events: messages up to `message_id` are held (whole,
    or message `message_id` itself up to `offset` characters while it streams)."""

    message_id: int = 0
    offset: int | None = None

    def __str__(self) -> str:
        if self.offset is None:
            return str(self.message_id)
        return f"{self.message_id}:{self.offset}"

    @classmethod
    def parse(cls, value: str | None, *, field: str = "after_id") -> Position:
        """A position from a client (`Last-Event-ID`, `?after_id=`); empty means start."""
        if value is None or not str(value).strip():
            return cls()
        match = POSITION_PATTERN.match(str(value).strip())
        if match is None:
            raise ValidationFailed.for_field(
                field, "invalid", "Expected an event id: `<message_id>` or `<message_id>:<offset>`."
            )
        offset = match.group(2)
        return cls(int(match.group(1)), int(offset) if offset is not None else None)


class StreamTracker:
    """One client's place in a conversation's events (see the module docstring)."""

    def __init__(self, position: Position | None = None) -> None:
        position = position or Position()
        # Streaming messages the client holds: id -> length of the text it holds.
        self.held: dict[int, int] = {}
        # Messages the client holds final (complete, failed, cancelled).
        self.final: set[int] = set()
        self.last_id = position.message_id
        if position.offset is not None:
            self.held[position.message_id] = position.offset
            self.last_id = position.message_id - 1

    @property
    def position(self) -> Position:
        """Where the client is now: the oldest message it holds unfinished, else the newest."""
        if self.held:
            message_id = min(self.held)
            return Position(message_id, self.held[message_id])
        return Position(self.last_id)

    def snapshot(self, message: ConversationMessage) -> dict[str, Any]:
        """The event for a stored message, recorded as what the client now holds."""
        self._hold_message(message.id, message.status == MessageStatus.STREAMING, message.text)
        return snapshot_event(message)

    def _hold_message(self, message_id: int, streaming: bool, text: str) -> None:
        self.last_id = max(self.last_id, message_id)
        if streaming:
            if message_id not in self.final:
                self.held[message_id] = max(self.held.get(message_id, 0), len(text))
        else:
            self.held.pop(message_id, None)
            self.final.add(message_id)

    async def resume(
        self,
        conversation_id: int,
        keep: Callable[[ConversationMessage], bool] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The stored state after the tracker's position, as events (call after the
        live listener joined, so nothing published since is missed); `keep` picks
        which messages are sent (default: all).

        A message the client holds part of gets nothing now when it still streams (the
        next live delta is widened from the stored text) and its final event when it
        has ended meanwhile."""
        after_id = self.last_id
        while True:
            rows = [
                row
                async for row in selectors.messages_after(
                    conversation_id=conversation_id, after_id=after_id, limit=RESUME_PAGE
                )
            ]
            for row in rows:
                if keep is not None and not keep(row):
                    continue
                if row.id in self.held and row.status == MessageStatus.STREAMING:
                    self.last_id = max(self.last_id, row.id)
                    continue
                yield self.snapshot(row)
            if len(rows) < RESUME_PAGE:
                return
            after_id = rows[-1].id

    async def live(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """A live event as this client should get it (None: it already has it)."""
        kind = event.get("type")
        if kind == EventType.MESSAGE_DELTA:
            return await self._delta(event)
        if kind == EventType.MESSAGE_CREATED or kind in FINAL_TYPES:
            message = event.get("message") or {}
            message_id = message.get("id")
            if not isinstance(message_id, int):
                return event
            if kind == EventType.MESSAGE_CREATED and message_id in self.final:
                return None  # a late echo of a message the client has final already
            streaming = message.get("status") == MessageStatus.STREAMING
            if kind == EventType.MESSAGE_CREATED and streaming and message_id in self.held:
                return None  # the client holds more of it already
            self._hold_message(message_id, streaming, message.get("text") or "")
            return event
        if kind == EventType.MESSAGE_DELETED:
            for message_id in event.get("message_ids") or ():
                self.held.pop(message_id, None)
            return event
        return event

    async def _delta(self, event: dict[str, Any]) -> dict[str, Any] | None:
        message_id = event["message_id"]
        if message_id in self.final:
            return None
        held = self.held.get(message_id)
        offset, delta = event["offset"], event["delta"]
        if held is None:
            # A message the client never saw created (it started before this stream and
            # its snapshot was not sent): the stored text up to here comes first.
            held = 0
        if offset + len(delta) <= held:
            return None
        if offset < held:
            event = {**event, "offset": held, "delta": delta[held - offset :]}
        elif offset > held:
            stored = await stored_text_reaching(message_id, offset)
            if stored is not None:
                event = {**event, "offset": held, "delta": stored[held:offset] + delta}
        self.held[message_id] = event["offset"] + len(event["delta"])
        return event


async def stored_text_reaching(message_id: int, length: int) -> str | None:
    """The message's stored text once it is at least `length` long; None if it does not
    get there (the message is gone, or its turn died) within a few save intervals.

    The turn saves the text it received before publishing it within one
    CONFAB_PARTIAL_SAVE_SECONDS interval, so waiting a few intervals is enough."""
    interval = settings.CONFAB_PARTIAL_SAVE_SECONDS
    deadline = time.monotonic() + 3 * interval + 1.0
    while True:
        try:
            row = await selectors.astreaming_text(message_id=message_id)
        except (OperationalError, InterfaceError):
            return None  # forwarded as it is; the final event carries the whole text
        if row is None:
            return None
        if len(row.text) >= length:
            return row.text
        if row.status != MessageStatus.STREAMING or time.monotonic() > deadline:
            return None
        await asyncio.sleep(interval / 4)
