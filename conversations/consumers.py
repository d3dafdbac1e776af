"""The live chat websocket: `/ws/conversations/<int:conversation_pk>/`.

A thin protocol adapter over the turn engine and the events module, keeping
the seed's `AgentChatConsumer` hooks so applications can subclass it:
`can_accept`, `get_conversation_pk`, `aget_conversation`,
`aget_previous_messages`, `on_conversation_complete`, the `llm_*` attributes
and `get_llm_prompt_context_data`.

Server frames are the events of `conversations.events` as they are, plus
`ready`, `error {code, detail}` and `pong`. Close codes: 4401 not
authenticated, 4404 not found or not yours, 4408 idle, 4429 too many sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError
from langchain_core.messages import BaseMessage
from redis.exceptions import RedisError

from conversations import live, selectors, socket_limits, turn_budget
from conversations.events import (
    CHANNEL_MESSAGE_TYPE,
    EventType,
    conversation_group,
    conversation_payload,
    message_event,
)
from conversations.frames import Frame, FrameError, parse_frame
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.turns import (
    TurnConfig,
    TurnHooks,
    build_turn_config,
    cancel_turn,
    load_agent,
    start_greeting,
    start_turn,
)
from core.errors import ApplicationError, NotFound, ServiceUnavailable

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_IDLE = 4408
CLOSE_TOO_MANY = 4429
RESUME_PAGE = 200


class _ConsumerHooks(TurnHooks):
    """Routes the engine's hooks to the consumer's overridable methods."""

    def __init__(self, consumer: AgentChatConsumer) -> None:
        self.consumer = consumer

    async def aget_previous_messages(
        self, conversation: Conversation, up_to_id: int
    ) -> list[BaseMessage]:
        return await self.consumer.aget_previous_messages(up_to_id)

    async def on_conversation_complete(
        self,
        human_message: ConversationMessage,
        ai_message: ConversationMessage,
        tools_output_list: list[dict[str, Any]],
    ) -> None:
        await self.consumer.on_conversation_complete(human_message, ai_message, tools_output_list)


class AgentChatConsumer(AsyncWebsocketConsumer):
    """Token-authenticated live chat over one conversation."""

    llm_model: str | None = None
    llm_temperature: float | None = None
    llm_system_prompt_template: str | None = None
    llm_first_user_message_template: str | None = None
    greet_on_connect: bool = True

    conversation: Conversation | None = None

    # --- the seed's hooks ----------------------------------------------------

    async def can_accept(self) -> bool:
        """Default: an authenticated user who owns the conversation."""
        user = self.scope.get("user")
        if not getattr(user, "is_authenticated", False):
            return False
        return await self.aget_conversation() is not None

    def get_conversation_pk(self) -> Any:
        kwargs = self.scope.get("url_route", {}).get("kwargs", {})
        for name in ("conversation_pk", "conversation_id", "pk", "id"):
            if name in kwargs:
                return kwargs[name]
        return None

    async def aget_conversation(self) -> Conversation | None:
        """The caller's conversation (owner-scoped), or None."""
        if self.conversation is None:
            try:
                self.conversation = await selectors.aget_conversation(
                    user=self.scope.get("user"), conversation_id=self.get_conversation_pk()
                )
            except ApplicationError:
                return None
        return self.conversation

    async def aget_previous_messages(self, up_to_id: int | None = None) -> list[BaseMessage]:
        """The bounded history window sent to the model (never the whole history)."""
        conversation = await self.aget_conversation()
        if up_to_id is None:
            up_to_id = await selectors.alast_message_id(conversation_id=conversation.pk) or 0
        return await TurnHooks().aget_previous_messages(conversation, up_to_id)

    async def on_conversation_complete(
        self,
        human_message: ConversationMessage,
        ai_message: ConversationMessage,
        tools_output_list: list[dict[str, Any]],
    ) -> None:
        """Called after a turn completed and is stored (the turn may outlive the socket)."""

    def get_llm_prompt_context_data(self) -> dict[str, Any]:
        """Values for the system prompt's variables; default: the conversation's context."""
        return dict(self.conversation.context) if self.conversation else {}

    def get_turn_config(self) -> TurnConfig:
        return build_turn_config(
            self.conversation,
            model=self.llm_model,
            temperature=self.llm_temperature,
            system_prompt_template=self.llm_system_prompt_template,
            first_user_message_template=self.llm_first_user_message_template,
            context=self.get_llm_prompt_context_data(),
        )

    # --- connection ----------------------------------------------------------

    async def connect(self) -> None:
        self.group = None
        # Streaming messages sent to this client as snapshots: id -> length of the text
        # it holds. Their live deltas are checked for a gap (see `_fill_gap`).
        self.held_text: dict[int, int] = {}
        self.counted_user_id = None
        self.idle_task = None
        self.last_activity = time.monotonic()
        if not await self.can_accept():
            # Accept first: a close code can only be sent on an open socket.
            await self.accept()
            user = self.scope.get("user")
            authenticated = getattr(user, "is_authenticated", False)
            await self.close(code=CLOSE_NOT_FOUND if authenticated else CLOSE_UNAUTHENTICATED)
            return
        conversation = await self.aget_conversation()
        if conversation is None:
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        # A subclass may fetch the conversation without its agent; the frames and
        # the turn config read it, and async code cannot lazy-load it.
        await load_agent(conversation)
        if not await self._count_socket():
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY)
            return
        self.group = conversation_group(conversation.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        live.register(self)
        await self.send_json(
            {
                "type": "ready",
                "conversation": conversation_payload(conversation),
                "last_message_id": await selectors.alast_message_id(
                    conversation_id=conversation.pk
                ),
                "active_turn": str(conversation.active_turn_id)
                if conversation.active_turn_id
                else None,
            }
        )
        self.idle_task = asyncio.ensure_future(self._close_when_idle())
        if self.greet_on_connect:
            await self._run_frame(self._greet)

    async def disconnect(self, code: int) -> None:
        live.unregister(self)
        if self.idle_task:
            self.idle_task.cancel()
        if self.group:
            # The layer may be what failed (Redis down): leaving it is best effort.
            with contextlib.suppress(RedisError):
                await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.counted_user_id is not None:
            with contextlib.suppress(RedisError):
                await self._uncount_socket()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.last_activity = time.monotonic()
        try:
            frame = parse_frame(text_data, max_bytes=settings.CONFAB_WS_MAX_FRAME_BYTES)
        except FrameError as exc:
            await self.send_error(exc.code, exc.detail)
            return
        handler = getattr(self, f"handle_{frame.type}")
        await self._run_frame(handler, frame)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route live events straight to `confab_event`.

        Channels runs `close_old_connections` before every handler, through the
        process's single sync thread that all ORM calls share. Relaying an event
        touches no database, and with hundreds of streaming sockets those hops
        queued every delta behind every other socket's queries (seconds of relay
        latency at N=100; bench/streaming.py). Client frames keep the default.
        """
        if message.get("type") == CHANNEL_MESSAGE_TYPE:
            await self.confab_event(message)
            return
        await super().dispatch(message)

    async def confab_event(self, message: dict[str, Any]) -> None:
        """A live event from the conversation's group: forwarded unchanged (a delta of a
        message this client got as a snapshot may be widened to cover a gap)."""
        event = message["event"]
        if self.held_text:
            event = await self._fill_gap(event)
        await self.send_json(event)
        if event["type"] == EventType.CONVERSATION_DELETED:
            # Deleted on another surface: nothing more can happen on this socket.
            await self.close(code=CLOSE_NOT_FOUND)

    # --- frames --------------------------------------------------------------

    async def refresh_conversation(self) -> None:
        """Re-read the conversation and its agent before a turn: another surface may have
        changed its context (the prompt's variables) since this socket connected."""
        try:
            await self.conversation.arefresh_from_db()
        except Conversation.DoesNotExist:
            raise NotFound("Conversation not found.") from None
        await load_agent(self.conversation)

    async def handle_message(self, frame: Frame) -> None:
        # The per-user turn budget REST and GraphQL share: no way around it here either.
        await turn_budget.acheck(self.scope.get("user"))
        await self.refresh_conversation()
        handle = await start_turn(
            conversation=self.conversation,
            content=frame.data.get("content"),
            client_message_id=frame.data.get("client_message_id"),
            config=self.get_turn_config(),
            hooks=_ConsumerHooks(self),
        )
        if handle.existing:
            # A repeat: nothing new will be published, so send the stored turn.
            await self.send_snapshot([handle.human_message, handle.ai_message])

    async def handle_cancel(self, frame: Frame) -> None:
        await cancel_turn(conversation=self.conversation)

    async def handle_regenerate(self, frame: Frame) -> None:
        await turn_budget.acheck(self.scope.get("user"))
        await self.refresh_conversation()
        await start_turn(
            conversation=self.conversation,
            regenerate=True,
            config=self.get_turn_config(),
            hooks=_ConsumerHooks(self),
        )

    async def handle_ping(self, frame: Frame) -> None:
        await self.send_json({"type": "pong"})

    async def handle_resume(self, frame: Frame) -> None:
        """Send every message after `after_id` (as stored now), then live events continue."""
        after_id = frame.data.get("after_id", 0)
        while True:
            rows = [
                row
                async for row in selectors.messages_after(
                    conversation_id=self.conversation.pk, after_id=after_id, limit=RESUME_PAGE
                )
            ]
            await self.send_snapshot(rows)
            if len(rows) < RESUME_PAGE:
                return
            after_id = rows[-1].id

    async def send_snapshot(self, rows: list[ConversationMessage | None]) -> None:
        """Send stored messages as the frames a live client would have seen last."""
        for row in rows:
            if row is None:
                continue
            self.held_text.pop(row.id, None)
            if row.status == MessageStatus.STREAMING:
                event_type = EventType.MESSAGE_CREATED
                self.held_text[row.id] = len(row.text)
            elif row.status == MessageStatus.FAILED:
                event_type = EventType.MESSAGE_FAILED
            else:
                event_type = EventType.MESSAGE_COMPLETED
            await self.send_json(message_event(event_type, row))

    async def _fill_gap(self, event: dict[str, Any]) -> dict[str, Any]:
        """Make a snapshot and the live deltas that follow it join up without a gap.

        A snapshot of a streaming message carries its stored partial text, saved
        every CONFAB_PARTIAL_SAVE_SECONDS, while deltas are published every few
        tens of ms: deltas published after that save but before this socket
        joined the group reached nobody here. When the first delta received
        starts past the text the client holds, the missing piece is read from the
        stored text (which the turn saves within one interval, as it received
        that text before publishing it) and sent as the start of that delta.
        """
        if event.get("type") != EventType.MESSAGE_DELTA:
            if event.get("type") in (EventType.MESSAGE_COMPLETED, EventType.MESSAGE_FAILED):
                self.held_text.pop(event["message"]["id"], None)
            return event
        message_id = event["message_id"]
        held = self.held_text.get(message_id)
        if held is None:
            return event
        offset, delta = event["offset"], event["delta"]
        if offset > held:
            stored = await self._stored_text_reaching(message_id, offset)
            if stored is not None:
                event = {**event, "offset": held, "delta": stored[held:offset] + delta}
        self.held_text[message_id] = max(held, offset + len(delta))
        return event

    async def _stored_text_reaching(self, message_id: int, length: int) -> str | None:
        """The message's stored text once it is at least `length` long; None if it does not
        get there (the message is gone, or its turn died) within a few save intervals."""
        interval = settings.CONFAB_PARTIAL_SAVE_SECONDS
        deadline = time.monotonic() + 3 * interval + 1.0
        while True:
            try:
                row = (
                    await ConversationMessage.objects.filter(pk=message_id)
                    .only("text", "status")
                    .afirst()
                )
            except (OperationalError, InterfaceError):
                return None  # forwarded as it is; the final event carries the whole text
            if row is None:
                return None
            if len(row.text) >= length:
                return row.text
            if row.status != MessageStatus.STREAMING or time.monotonic() > deadline:
                return None
            await asyncio.sleep(interval / 4)

    async def _greet(self) -> None:
        await start_greeting(
            conversation=self.conversation,
            config=self.get_turn_config(),
            hooks=_ConsumerHooks(self),
        )

    # --- plumbing ------------------------------------------------------------

    async def _run_frame(self, handler: Any, *args: Any) -> None:
        try:
            await handler(*args)
        except ApplicationError as exc:
            await self.send_error(
                exc.code, exc.detail, fields=exc.fields, retry_after=exc.extra.get("retry_after")
            )
        except (OperationalError, InterfaceError):
            # The database is unreachable: say so and keep the socket (ping, live
            # events and the next frame after it is back all still work).
            logger.warning(
                "Database unavailable during a %s frame", getattr(handler, "__name__", "")
            )
            error = ServiceUnavailable("The database is unavailable. Retry shortly.")
            await self.send_error(error.code, error.detail)

    async def send_error(
        self, code: str, detail: str, fields: dict | None = None, retry_after: int | None = None
    ) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if fields:
            frame["fields"] = fields
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await self.send_json(frame)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=_dumps(content))

    async def _close_when_idle(self) -> None:
        timeout = settings.CONFAB_WS_IDLE_TIMEOUT
        while True:
            remaining = timeout - (time.monotonic() - self.last_activity)
            if remaining <= 0:
                await self.send_error("IDLE_TIMEOUT", "Closed after a period without frames.")
                await self.close(code=CLOSE_IDLE)
                return
            await asyncio.sleep(remaining)

    async def _count_socket(self) -> bool:
        user = self.scope.get("user")
        if not getattr(user, "is_authenticated", False):
            return True
        if not await socket_limits.acquire(user.pk):
            return False
        self.counted_user_id = user.pk
        return True

    async def _uncount_socket(self) -> None:
        await socket_limits.release(self.counted_user_id)
        self.counted_user_id = None


def _dumps(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))
