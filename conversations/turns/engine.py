"""Start, run, cancel and await turns.

The rules, each with a test in tests/conversations/test_turns.py:
- the human message is committed (`services.begin_turn`) before any provider
  call, and the AI message exists as `streaming` from the start;
- the model sees the rendered system prompt and a bounded history window, so
  a turn's SQL is the same for 10 or 10,000 stored messages;
- tool calls run in a bounded loop, each call and result stored;
- provider errors, timeouts and cut streams end the reply `failed` with its
  partial text and a stable error code; cancel ends it `cancelled`;
- the turn runs in its own task: a client that goes away does not stop it;
- one active turn per conversation, held in the database (`active_turn_id`),
  heartbeated by the process from the moment it is taken (`ticks`; tests in
  tests/conversations/test_recovery.py);
- at most CONFAB_MAX_TURNS_PER_PROCESS turns per process: beyond, a new turn is
  refused (TurnCapacityReached, 503) before anything is stored (tests in
  tests/conversations/test_admission.py and per surface).

Database work runs in the engine's thread pool (`threads`), one service call
(one transaction) per hop, not on the process's single sync thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from langchain_core.messages import (
    HumanMessage,
)

from conversations import services
from conversations.codec import CodecError, decode_message
from conversations.llm.fit import require_images_supported
from conversations.llm.prompts import render_template
from conversations.llm.registry import ModelInfo, model_info
from conversations.models import Conversation, ConversationMessage, MessageRole, MessageStatus
from conversations.turns import ticks
from conversations.turns.config import (
    CAPACITY_RETRY_AFTER_SECONDS,
    TurnConfig,
    TurnHooks,
    build_turn_config,
    load_agent,
    max_turns_per_process,
)
from conversations.turns.runner import run_turn
from conversations.turns.streaming import CancelSignal
from conversations.turns.threads import in_turn_thread
from core.errors import TurnCapacityReached, ValidationFailed

logger = logging.getLogger(__name__)

# Turns running in this process, by turn id. Tasks are kept here so they are
# not garbage collected while running (asyncio keeps only weak references).
_RUNNING: dict[uuid.UUID, RunningTurn] = {}


class _Admission:
    """Turns this process has admitted: starting (their `begin_turn` in flight) or running.

    Counted from before the first query, so a burst cannot overshoot the cap while
    its turns wait for the database. The one place turns are admitted: REST, GraphQL
    and the websocket all start turns through `start_turn`.
    """

    def __init__(self) -> None:
        self.taken = 0

    def take(self) -> None:
        if self.taken >= max_turns_per_process():
            raise TurnCapacityReached(extra={"retry_after": CAPACITY_RETRY_AFTER_SECONDS})
        self.taken += 1

    def release(self) -> None:
        self.taken -= 1


_ADMISSION = _Admission()


@dataclass
class RunningTurn:
    task: asyncio.Task[ConversationMessage | None]
    cancel: CancelSignal


@dataclass
class TurnHandle:
    """A started turn: its stored messages at start, and its task if it runs here."""

    turn_id: uuid.UUID
    human_message: ConversationMessage
    ai_message: ConversationMessage
    existing: bool
    task: asyncio.Task[ConversationMessage | None] | None


@dataclass
class TurnResult:
    human_message: ConversationMessage
    ai_message: ConversationMessage


def validate_content(content: Any) -> str:
    """Message text from a client: a non-blank string within CONFAB_MAX_CONTENT_CHARS."""
    if not isinstance(content, str):
        raise ValidationFailed.for_field("content", "invalid", "content must be a string.")
    if not content.strip():
        raise ValidationFailed.for_field("content", "blank", "content must not be blank.")
    if len(content) > settings.CONFAB_MAX_CONTENT_CHARS:
        raise ValidationFailed.for_field(
            "content",
            "too_long",
            f"content is longer than {settings.CONFAB_MAX_CONTENT_CHARS} characters.",
        )
    return content


def validate_client_message_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 100:
        raise ValidationFailed.for_field(
            "client_message_id", "invalid", "client_message_id must be a string of 1-100 chars."
        )
    return value


async def start_turn(
    *,
    conversation: Conversation,
    content: Any = None,
    client_message_id: Any = None,
    regenerate: bool = False,
    config: TurnConfig | None = None,
    hooks: TurnHooks | None = None,
) -> TurnHandle:
    """Store the human message and the AI placeholder, then run the turn in the background.

    Raises TurnInProgress (409) when another turn holds the conversation, and
    TurnCapacityReached (503, nothing stored) when this process already runs
    CONFAB_MAX_TURNS_PER_PROCESS turns. A repeated `client_message_id` returns the
    existing turn (`existing=True`).
    """
    text = None if regenerate else validate_content(content)
    client_message_id = validate_client_message_id(client_message_id)
    _ADMISSION.take()
    try:
        # Everything that can fail happens before the turn takes its lock.
        if config is None:
            await load_agent(conversation)
            config = build_turn_config(conversation)
        if config.model_info is None:
            config.model_info = await in_turn_thread(model_info)(config.model)
        human = None if regenerate else HumanMessage(content=text)
        await _require_model_can_take(conversation, config.model_info, human)
        start = await in_turn_thread(services.begin_turn)(
            conversation=conversation,
            content=human,
            client_message_id=client_message_id,
            regenerate=regenerate,
        )
    except BaseException:
        _ADMISSION.release()
        raise
    if start.existing:
        _ADMISSION.release()
        running = _RUNNING.get(start.turn_id)
        return TurnHandle(
            turn_id=start.turn_id,
            human_message=start.human_message,
            ai_message=start.ai_message,
            existing=True,
            task=running.task if running else None,
        )
    cancel = CancelSignal()
    # Heartbeated from now on, not from its first streamed chunk: under overload a
    # turn's start-up may outlast CONFAB_TURN_STALE_SECONDS.
    ticks.register(
        conversation_id=conversation.pk, turn_id=start.turn_id, on_status=cancel.on_heartbeat
    )
    # A fresh context: create_task copies the caller's, and a request's holds
    # asgiref's ThreadSensitiveContext; inherited, the turn's DB calls fail with
    # "CurrentThreadExecutor already quit" once the request ends, or leak a thread
    # and a connection per turn.
    task = asyncio.get_running_loop().create_task(
        run_turn(
            conversation=conversation,
            human_message=start.human_message,
            ai_message=start.ai_message,
            turn_id=start.turn_id,
            config=config,
            hooks=hooks or TurnHooks(),
            cancel=cancel,
        ),
        context=contextvars.Context(),
    )
    _RUNNING[start.turn_id] = RunningTurn(task=task, cancel=cancel)

    def ended(_: asyncio.Task[ConversationMessage | None]) -> None:
        _RUNNING.pop(start.turn_id, None)
        ticks.unregister(start.turn_id)
        _ADMISSION.release()

    task.add_done_callback(ended)
    return TurnHandle(
        turn_id=start.turn_id,
        human_message=start.human_message,
        ai_message=start.ai_message,
        existing=False,
        task=task,
    )


async def _require_model_can_take(
    conversation: Conversation, info: ModelInfo, human: HumanMessage | None
) -> None:
    """MODEL_CANNOT_SEE_IMAGES before anything is stored: for the new human message, or
    (regenerate) for the stored one the turn answers again."""
    if info.supports_images:
        return
    if human is not None:
        require_images_supported(info, human.content)
        return
    content = await in_turn_thread(_last_human_content)(conversation.pk)
    if content is not None:
        require_images_supported(info, content)


def _last_human_content(conversation_id: int) -> Any:
    stored = (
        ConversationMessage.objects.filter(conversation_id=conversation_id, role=MessageRole.HUMAN)
        .order_by("-id")
        .values_list("content", flat=True)
        .first()
    )
    if stored is None:
        return None
    try:
        return decode_message(stored).content
    except CodecError:
        return None


async def start_greeting(
    *,
    conversation: Conversation,
    config: TurnConfig | None = None,
    hooks: TurnHooks | None = None,
) -> TurnHandle | None:
    """The seed's opening: in an empty conversation, send the first-user-message template."""
    if config is None:
        await load_agent(conversation)
        config = build_turn_config(conversation)
    if not config.first_user_message_template or conversation.message_count:
        return None
    if await in_turn_thread(conversation.messages.exists)():
        return None
    content = render_template(config.first_user_message_template, config.context)
    return await start_turn(conversation=conversation, content=content, config=config, hooks=hooks)


async def cancel_turn(*, conversation: Conversation) -> uuid.UUID:
    """Cancel the conversation's running turn, wherever it runs (NoActiveTurn if none)."""
    turn_id = await in_turn_thread(services.request_cancel)(conversation=conversation)
    running = _RUNNING.get(turn_id)
    if running:
        running.cancel.set()
    return turn_id


async def wait_for_result(handle: TurnHandle, *, timeout: float | None = None) -> TurnResult:
    """Wait until the turn ended and return its human message and final AI message.

    A turn running in this process is awaited; one running elsewhere (a
    repeated request that landed on another worker) is polled.
    """
    timeout = timeout or settings.CONFAB_LLM_TIMEOUT * (settings.CONFAB_TOOL_MAX_ROUNDS + 2)
    deadline = time.monotonic() + timeout
    if handle.task is not None:
        await asyncio.wait_for(asyncio.shield(handle.task), timeout=timeout)
    while True:
        result = await in_turn_thread(_stored_result)(handle)
        if result.ai_message is None or result.ai_message.status != MessageStatus.STREAMING:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("turn did not finish in time")
        await asyncio.sleep(0.2)


def _stored_result(handle: TurnHandle) -> TurnResult:
    human = ConversationMessage.objects.get(pk=handle.human_message.pk)
    ai = (
        ConversationMessage.objects.filter(
            conversation_id=human.conversation_id, turn_id=handle.turn_id, role=MessageRole.AI
        )
        .order_by("-id")
        .first()
    )
    return TurnResult(human_message=human, ai_message=ai or handle.ai_message)


def running_turn_count() -> int:
    """Turns running in this process (for health and shutdown)."""
    return len(_RUNNING)


def admitted_turn_count() -> int:
    """Turns admitted in this process: starting or running (what the cap counts)."""
    return _ADMISSION.taken
