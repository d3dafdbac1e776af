"""The live chat websocket: `/ws/conversations/<int:conversation_pk>/`.

A thin protocol adapter over the turn engine and the events module, keeping
the seed's `AgentChatConsumer` hooks so applications can subclass it:
`can_accept`, `get_conversation_pk`, `aget_conversation`,
`aget_previous_messages`, `on_conversation_complete`, the `llm_*` attributes
and `get_llm_prompt_context_data`.

Server frames are the events of `conversations.events` as they are, plus
`ready`, `error {code, detail}`, `pong` and `resumed {after_id, has_more}`.
Close codes (`conversations.close_codes`): 4401 not authenticated or the token
revoked, 4404 not found or not yours, 4408 idle, 4429 too many sockets or frames,
4503 a backing service down, 1011 an unexpected error. Slots, the credential,
the idle timeout and the frame budget are the shared `SocketLifecycle`'s.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import InterfaceError, OperationalError
from langchain_core.messages import BaseMessage

from conversations import selectors, services
from conversations.close_codes import Close
from conversations.events import (
    CHANNEL_MESSAGE_TYPE,
    EventType,
    conversation_group,
    conversation_payload,
    snapshot_event,
)
from conversations.frames import Frame, FrameError, parse_frame
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.resume import stored_text_reaching
from conversations.socket_lifecycle import SocketLifecycle
from conversations.turns import (
    TurnConfig,
    TurnHooks,
    build_turn_config,
    cancel_turn,
    decide_tool_call,
    load_agent,
    start_greeting,
    start_turn,
)
from core.errors import ApplicationError, DatabaseUnavailable, NotFound

logger = logging.getLogger(__name__)

# What a `resume` costs of the frame budget: it may send a page of stored messages.
RESUME_FRAME_COST = 10.0
# Frames that only answer (no database work, no turn): served without re-checking
# the token.
LIGHT_FRAMES = {"ping"}


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


class AgentChatConsumer(SocketLifecycle, AsyncWebsocketConsumer):
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
        if not await self.can_accept():
            # Accept first: a close code can only be sent on an open socket.
            await self.accept()
            user = self.scope.get("user")
            authenticated = getattr(user, "is_authenticated", False)
            await self.close(code=Close.NOT_FOUND if authenticated else Close.UNAUTHENTICATED)
            return
        conversation = await self.aget_conversation()
        if conversation is None:
            await self.accept()
            await self.close(code=Close.NOT_FOUND)
            return
        # A subclass may fetch the conversation without its agent; the frames and
        # the turn config read it, and async code cannot lazy-load it.
        await load_agent(conversation)
        user = self.scope.get("user")
        if getattr(user, "is_authenticated", False) and not await self.admit_user(
            user, self.scope.get("auth_token")
        ):
            await self.accept()
            await self.close(code=Close.TOO_MANY)
            return
        self.group = conversation_group(conversation.pk)
        await self.join_group(self.group)
        await self.accept()
        self.track()
        await self.follow_conversation(conversation.pk)
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
        self.start_idle_watch()
        if self.greet_on_connect:
            await self._run_frame(self._greet)

    async def disconnect(self, code: int) -> None:
        await self.lifecycle_end()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = parse_frame(text_data, max_bytes=settings.CONFAB_WS_MAX_FRAME_BYTES)
        except FrameError as exc:
            if await self.spend_frame():
                await self.send_error(exc.code, exc.detail)
            return
        if not await self.spend_frame(RESUME_FRAME_COST if frame.type == "resume" else 1.0):
            return
        handler = getattr(self, f"handle_{frame.type.replace('.', '_')}")
        if frame.type in LIGHT_FRAMES:
            await self._run_frame(handler, frame)
        else:
            await self._run_frame(self._with_credential, handler, frame)

    async def _with_credential(self, handler: Any, frame: Frame) -> None:
        """Serve a frame that does work only while the socket's token is valid (closed 4401
        otherwise). Inside `_run_frame`: with the database down, the frame gets the
        SERVICE_UNAVAILABLE error frame and the socket stays open."""
        if await self.credential_still_valid():
            await handler(frame)

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
        if self.closing:
            return  # closed (revoked, idle, over budget): nothing more is served
        event = message["event"]
        if self.held_text:
            event = await self._fill_gap(event)
        await self.send_json(event)
        if event["type"] == EventType.CONVERSATION_DELETED:
            # Deleted on another surface: nothing more can happen on this socket.
            await self.close(code=Close.NOT_FOUND)

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
            attachments=frame.data.get("attachments"),
            images_base64=frame.data.get("images__base64"),
            on_busy=frame.data.get("on_busy"),
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

    async def handle_edit(self, frame: Frame) -> None:
        await self.refresh_conversation()
        handle = await start_turn(
            conversation=self.conversation,
            content=frame.data.get("content"),
            client_message_id=frame.data.get("client_message_id"),
            edit_of=frame.data.get("message_id"),
            config=self.get_turn_config(),
            hooks=_ConsumerHooks(self),
        )
        if handle.existing:
            await self.send_snapshot([handle.human_message, handle.ai_message])

    async def handle_branch(self, frame: Frame) -> None:
        # The switch is announced to every device (this one too) by its event.
        await database_sync_to_async(services.switch_branch)(
            conversation=self.conversation, message_id=frame.data.get("message_id")
        )

    async def handle_tool_approve(self, frame: Frame) -> None:
        await decide_tool_call(
            user=self.scope.get("user"),
            conversation_id=self.conversation.pk,
            call_id=frame.data.get("call_id"),
            approve=True,
        )

    async def handle_tool_deny(self, frame: Frame) -> None:
        await decide_tool_call(
            user=self.scope.get("user"),
            conversation_id=self.conversation.pk,
            call_id=frame.data.get("call_id"),
            approve=False,
            reason=frame.data.get("reason"),
        )

    async def handle_ping(self, frame: Frame) -> None:
        await self.send_json({"type": "pong"})

    async def handle_resume(self, frame: Frame) -> None:
        """Send one page of the messages after `after_id` (as stored now; at most
        CONFAB_WS_RESUME_PAGE), then `resumed {after_id, has_more}`: while `has_more`, the
        client sends `resume` again from that `after_id`. Live events continue meanwhile.

        Paged like history: a `resume {after_id: 0}` on a long conversation sent
        the whole history in one go, and 20 of them 259 MB (issue 14.13).
        """
        after_id = frame.data.get("after_id", 0)
        page = max(1, int(settings.CONFAB_WS_RESUME_PAGE))
        rows = [
            row
            async for row in selectors.messages_after(
                conversation_id=self.conversation.pk, after_id=after_id, limit=page + 1
            )
        ]
        has_more = len(rows) > page
        rows = rows[:page]
        await self.send_snapshot(rows)
        await self.send_json(
            {
                "type": "resumed",
                "after_id": rows[-1].id if rows else after_id,
                "has_more": has_more,
            }
        )

    async def send_snapshot(self, rows: list[ConversationMessage | None]) -> None:
        """Send stored messages as the frames a live client would have seen last."""
        for row in rows:
            if row is None:
                continue
            self.held_text.pop(row.id, None)
            if row.status == MessageStatus.STREAMING:
                self.held_text[row.id] = len(row.text)
            await self.send_json(snapshot_event(row))

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
            stored = await stored_text_reaching(message_id, offset)
            if stored is not None:
                event = {**event, "offset": held, "delta": stored[held:offset] + delta}
        self.held_text[message_id] = max(held, offset + len(delta))
        return event

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
                exc.code,
                exc.detail,
                fields=exc.fields,
                retry_after=exc.extra.get("retry_after"),
                # e.g. QUOTA_EXCEEDED: when the quota resets, and which one is spent.
                more=exc.body_fields(),
            )
        except (OperationalError, InterfaceError):
            # The database is unreachable: say so and keep the socket (ping, live
            # events and the next frame after it is back all still work).
            logger.warning(
                "Database unavailable during a %s frame", getattr(handler, "__name__", "")
            )
            error = DatabaseUnavailable()
            await self.send_error(error.code, error.detail)

    async def send_error(
        self,
        code: str,
        detail: str,
        fields: dict | None = None,
        retry_after: int | None = None,
        more: dict[str, Any] | None = None,
    ) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail}
        if fields:
            frame["fields"] = fields
        if retry_after is not None:
            frame["retry_after"] = retry_after
        if more:
            frame.update(more)
        await self.send_json(frame)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=_dumps(content))

    async def on_idle(self) -> None:
        await self.send_error("IDLE_TIMEOUT", "Closed after a period without frames.")
        await super().on_idle()


def _dumps(content: dict[str, Any]) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))
