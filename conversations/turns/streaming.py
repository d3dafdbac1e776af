"""Streaming one reply: relay deltas live, save partial text, idle timeout, cancel.

Two coroutines per reply. The pump reads the provider's stream as fast as it
comes and publishes text deltas, batched over CONFAB_DELTA_FLUSH_SECONDS so a
fast model does not send one channel-layer message per token. The watcher
wakes every CONFAB_PARTIAL_SAVE_SECONDS to save the partial text (bounded
writes, not one per token) and enforce the idle timeout. The turn lock's
heartbeat is not here: the process heartbeats all its turns at once, from the
moment each took its lock (`ticks`), and signals a cancel asked from another
process, or a lost lock, through the turn's `CancelSignal`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage

from conversations import services
from conversations.events import apublish, delta_event
from conversations.turns.failures import IdleTimeout, classify_failure
from conversations.turns.ticks import tick_turn
from core import tracing


class TurnCancelled(Exception):
    """The user cancelled the turn."""


@dataclass
class StreamState:
    conversation_id: int
    turn_id: uuid.UUID
    message_id: int
    text: str = ""
    pending: str = ""
    pending_offset: int = 0
    delta_index: int = 0
    last_flush: float = 0.0
    last_chunk_at: float = field(default_factory=time.monotonic)
    saved_text: str = ""
    accumulated: AIMessageChunk | None = None
    partial_saves: int = 0
    # When the oldest text in `pending` arrived (relay lag, core/metrics.py).
    pending_since: float = 0.0

    async def flush(self) -> None:
        if not self.pending:
            return
        event = delta_event(
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            index=self.delta_index,
            offset=self.pending_offset,
            delta=self.pending,
        )
        self.delta_index += 1
        self.pending_offset += len(self.pending)
        self.pending = ""
        self.last_flush = time.monotonic()
        await apublish(event)
        tracing.token_relayed(self.pending_since)

    def add(self, chunk: AIMessageChunk) -> None:
        self.accumulated = chunk if self.accumulated is None else self.accumulated + chunk
        piece = chunk.text
        if piece:
            if not self.pending:
                self.pending_since = time.monotonic()
            self.text += piece
            self.pending += piece
        self.last_chunk_at = time.monotonic()


class CancelSignal:
    """Stops a turn: set by `cancel_turn` in this process, or by the process's heartbeat
    when the database says the turn was cancelled elsewhere or lost its lock."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.lost = False

    def set(self) -> None:
        self.event.set()

    def on_heartbeat(self, status: str) -> None:
        """The heartbeat's news of a turn (`services.tick_turns`): `cancel` or `lost`."""
        if status == "lost":
            self.lost = True
        if status in ("cancel", "lost"):
            self.event.set()

    def check(self, turn_id: uuid.UUID) -> None:
        """Raise TurnLost or TurnCancelled if the turn must stop."""
        if self.lost:
            raise services.TurnLost(turn_id)
        if self.event.is_set():
            raise TurnCancelled()


async def _pump(stream: AsyncIterator[Any], state: StreamState) -> None:
    flush_every = settings.CONFAB_DELTA_FLUSH_SECONDS
    iterator = aiter(stream)
    while True:
        if state.pending:
            # Wait for the next chunk only until the batch is due, then send it.
            wait = max(0.0, flush_every - (time.monotonic() - state.last_flush))
            next_chunk = asyncio.ensure_future(anext(iterator))
            try:
                done, _ = await asyncio.wait({next_chunk}, timeout=wait)
                if not done:
                    await state.flush()
                chunk = await next_chunk
            except StopAsyncIteration:
                break
            finally:
                next_chunk.cancel()
        else:
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                break
        state.add(chunk)
        if state.pending and time.monotonic() - state.last_flush >= flush_every:
            await state.flush()
    await state.flush()


async def stream_reply(
    *,
    model: BaseChatModel,
    messages: list[BaseMessage],
    state: StreamState,
    cancel: CancelSignal,
) -> AIMessageChunk:
    """Stream one reply into `state`; raise TurnCancelled, IdleTimeout or the provider's error.

    Returns the accumulated chunk (text, tool calls, usage, response metadata).
    """
    # A turn stopped during its start-up does not call the provider.
    cancel.check(state.turn_id)
    # Span, latency, errors and token counts of the call (core/tracing.py).
    with tracing.provider_call(
        model, classify=classify_failure, not_failures=(TurnCancelled, services.TurnLost)
    ) as call:
        reply = await _stream(model=model, messages=messages, state=state, cancel=cancel)
        call.record_usage(reply)
    return reply


async def _stream(
    *,
    model: BaseChatModel,
    messages: list[BaseMessage],
    state: StreamState,
    cancel: CancelSignal,
) -> AIMessageChunk:
    tick = settings.CONFAB_PARTIAL_SAVE_SECONDS
    idle_timeout = settings.CONFAB_LLM_IDLE_TIMEOUT
    pump = asyncio.ensure_future(_pump(model.astream(messages), state))
    cancel_wait = asyncio.ensure_future(cancel.event.wait())
    next_touch = time.monotonic() + tick
    try:
        while not pump.done():
            timeout = max(0.0, next_touch - time.monotonic())
            await asyncio.wait({pump, cancel_wait}, timeout=timeout, return_when="FIRST_COMPLETED")
            cancel.check(state.turn_id)
            if pump.done():
                break
            if time.monotonic() - state.last_chunk_at > idle_timeout:
                raise IdleTimeout()
            if time.monotonic() >= next_touch:
                next_touch = time.monotonic() + tick
                await _save_partial(state)
        pump.result()
    finally:
        cancel_wait.cancel()
        if not pump.done():
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
    if state.accumulated is None:
        return AIMessageChunk(content="")
    return state.accumulated


async def _save_partial(state: StreamState) -> None:
    if state.text == state.saved_text:
        return
    text = state.text
    # One batched write with the other turns of this process (conversations.turns.ticks).
    await tick_turn(
        conversation_id=state.conversation_id,
        turn_id=state.turn_id,
        message_id=state.message_id,
        text=text,
        touch=False,
    )
    state.saved_text = text
    state.partial_saves += 1
