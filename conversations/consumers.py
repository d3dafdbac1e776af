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
from django.core.cache import cache
from langchain_core.messages import BaseMessage

from conversations import selectors
from conversations.errors import ApplicationError, NotFound
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

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_IDLE = 4408
CLOSE_TOO_MANY = 4429
RESUME_PAGE = 200
SOCKET_COUNT_TTL = 3600


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
        if self.idle_task:
            self.idle_task.cancel()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.counted_user_id is not None:
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
        """A live event from the conversation's group: forwarded unchanged."""
        event = message["event"]
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
            if row.status == MessageStatus.STREAMING:
                event_type = EventType.MESSAGE_CREATED
            elif row.status == MessageStatus.FAILED:
                event_type = EventType.MESSAGE_FAILED
            else:
                event_type = EventType.MESSAGE_COMPLETED
            await self.send_json(message_event(event_type, row))

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
            await self.send_error(exc.code, exc.detail, fields=exc.fields)

    async def send_error(self, code: str, detail: str, fields: dict | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if fields:
            frame["fields"] = fields
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

    def _socket_key(self, user_id: int) -> str:
        return f"confab:ws:user:{user_id}"

    async def _count_socket(self) -> bool:
        user = self.scope.get("user")
        if not getattr(user, "is_authenticated", False):
            return True
        key = self._socket_key(user.pk)
        await cache.aadd(key, 0, SOCKET_COUNT_TTL)
        count = await cache.aincr(key)
        await cache.atouch(key, SOCKET_COUNT_TTL)
        self.counted_user_id = user.pk
        if count > settings.CONFAB_WS_MAX_PER_USER:
            await self._uncount_socket()
            return False
        return True

    async def _uncount_socket(self) -> None:
        with contextlib.suppress(ValueError):
            await cache.adecr(self._socket_key(self.counted_user_id))
        self.counted_user_id = None


def _dumps(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))
