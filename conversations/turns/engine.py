"""Start, run, cancel and await turns.

The rules, each with a test in tests/conversations/test_turns.py:
- the human message is committed (`services.begin_turn`) before any provider
  call, and the AI message exists as `streaming` from the start;
- the model sees the rendered system prompt and a bounded history window, so
  a turn's SQL is the same for 10 or 10,000 stored messages;
- tool calls run in a bounded loop, each call and result stored; a call to a tool the
  agent lists in `tools_requiring_approval` pauses the turn until the user decides
  (`turns.approval`; tests in tests/conversations/test_tool_approval.py);
- provider errors, timeouts and cut streams end the reply `failed` with its
  partial text and a stable error code; cancel ends it `cancelled`;
- the turn runs in its own task: a client that goes away does not stop it;
- one active turn per conversation, held in the database (`active_turn_id`),
  heartbeated by the process from the moment it is taken (`ticks`; tests in
  tests/conversations/test_recovery.py);
- at most CONFAB_MAX_TURNS_PER_PROCESS turns per process: beyond, a new turn is
  refused (TurnCapacityReached, 503) before anything is stored, and at most
  CONFAB_MAX_TURNS_PER_USER of them one user's (UserTurnCapacityReached, 429), so
  one user cannot take the capacity all share (tests in
  tests/conversations/test_admission.py and per surface);
- every turn, a greeting included, spends the user's turn budget
  (`conversations.turn_budget`) here, in `start_turn`: the one place every surface
  goes through, so no caller can forget it.

Database work runs in the engine's thread pool (`threads`), one service call
(one transaction) per hop, not on the process's single sync thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from langchain_core.messages import (
    HumanMessage,
)

from conversations import services, turn_budget
from conversations.approvals import services as approval_services
from conversations.codec import CodecError, decode_message
from conversations.files import attachments as file_attachments
from conversations.files.models import UserFile
from conversations.inputs import parse_message_id
from conversations.llm.fit import require_images_supported
from conversations.llm.prompts import render_template
from conversations.llm.registry import ModelInfo, model_info
from conversations.models import (
    Conversation,
    ConversationMessage,
    MessageRole,
    MessageStatus,
    OnBusy,
)
from conversations.selectors import active_path
from conversations.turns import ticks
from conversations.turns.config import (
    CAPACITY_RETRY_AFTER_SECONDS,
    TurnConfig,
    TurnHooks,
    build_turn_config,
    load_agent,
    max_turns_per_process,
    max_turns_per_user,
)
from conversations.turns.runner import run_turn
from conversations.turns.streaming import CancelSignal
from conversations.turns.threads import in_turn_thread
from conversations.usage.models import UsageKind
from conversations.usage.prices import prices_of
from conversations.usage.services import Charge
from core import metrics, request_id
from core.errors import (
    ModelCannotSeeImages,
    TurnCapacityReached,
    UserTurnCapacityReached,
    ValidationFailed,
)

logger = logging.getLogger(__name__)

# Turns running in this process, by turn id. Tasks are kept here so they are
# not garbage collected while running (asyncio keeps only weak references).
_RUNNING: dict[uuid.UUID, RunningTurn] = {}


class _Admission:
    """Turns this process has admitted: starting (their `begin_turn` in flight) or running.

    Counted from before the first query, so a burst cannot overshoot the cap while
    its turns wait for the database. The one place turns are admitted: REST, GraphQL
    and the websocket all start turns through `start_turn` (queued turns through
    `start_queued_turn`).
    """

    def __init__(self) -> None:
        self.taken = 0
        self.by_user: dict[Any, int] = {}

    def take(self, user_id: Any) -> None:
        if self.taken >= max_turns_per_process():
            metrics.turn_refused(TurnCapacityReached.code)
            raise TurnCapacityReached(extra={"retry_after": CAPACITY_RETRY_AFTER_SECONDS})
        if self.by_user.get(user_id, 0) >= max_turns_per_user():
            raise UserTurnCapacityReached(extra={"retry_after": CAPACITY_RETRY_AFTER_SECONDS})
        self._count(user_id)

    def try_take(self, user_id: Any) -> bool:
        """`take` without raising (a queued turn waits for the next sweep instead)."""
        if self.taken >= max_turns_per_process():
            return False
        if self.by_user.get(user_id, 0) >= max_turns_per_user():
            return False
        self._count(user_id)
        return True

    def _count(self, user_id: Any) -> None:
        self.taken += 1
        self.by_user[user_id] = self.by_user.get(user_id, 0) + 1

    def release(self, user_id: Any) -> None:
        self.taken -= 1
        left = self.by_user.get(user_id, 0) - 1
        if left > 0:
            self.by_user[user_id] = left
        else:
            self.by_user.pop(user_id, None)


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
    # None while a queued message waits for its turn.
    ai_message: ConversationMessage | None
    existing: bool
    task: asyncio.Task[ConversationMessage | None] | None
    # The human message was queued behind the running turn (on_busy "enqueue").
    queued: bool = False


@dataclass
class TurnResult:
    human_message: ConversationMessage
    ai_message: ConversationMessage | None


def validate_content(content: Any, *, allow_blank: bool = False) -> str:
    """Message text from a client: a non-blank string within CONFAB_MAX_CONTENT_CHARS
    (blank allowed, with `allow_blank`, when files are attached)."""
    if allow_blank and content is None:
        return ""
    if not isinstance(content, str):
        raise ValidationFailed.for_field("content", "invalid", "content must be a string.")
    if not content.strip() and not allow_blank:
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
    edit_of: Any = None,
    config: TurnConfig | None = None,
    hooks: TurnHooks | None = None,
    attachments: Any = None,
    images_base64: Any = None,
    on_busy: Any = None,
    usage_kind: str | None = None,
) -> TurnHandle:
    """Store the human message and the AI placeholder, then run the turn in the background.

    Raises RateLimited (429) past the user's turn budget, TurnInProgress (409) when
    another turn holds the conversation, TurnCapacityReached (503, nothing stored)
    when this process already runs CONFAB_MAX_TURNS_PER_PROCESS turns and
    UserTurnCapacityReached (429) when the user runs CONFAB_MAX_TURNS_PER_USER of
    them. A repeated `client_message_id` returns the existing turn (`existing=True`).
    `attachments` (the user's file ids) and `images_base64` (the origin's websocket
    form) become file blocks of the human message (conversations/files/attachments.py).
    `on_busy` ("reject" | "enqueue"; default: the agent's): with "enqueue", a message
    sent while a turn runs is stored as `queued` and answered after it, in order
    (`queued=True`, no task yet); it spends the turn budget now, when it is sent.
    Raises QuotaExceeded (429, nothing stored) when the user's usage quota is spent
    (`conversations.usage`); its model calls are recorded as `usage_kind` (default:
    turn, or regenerate). `edit_of` (the id of a human message of the conversation)
    stores `content` as a new version of that message, a sibling in the conversation's
    tree, and answers it: the old version and its replies are kept on their branch
    (`services.begin_turn`); an edit is never queued (TurnInProgress while a turn runs).
    """
    if edit_of is not None:
        edit_of = parse_message_id(edit_of)
    file_ids = file_attachments.parse_attachment_ids(attachments)
    with_files = bool(file_ids or images_base64)
    text = None if regenerate else validate_content(content, allow_blank=with_files)
    client_message_id = validate_client_message_id(client_message_id)
    on_busy = validate_on_busy(on_busy)
    user_id = conversation.user_id
    await turn_budget.acheck_user_id(user_id)
    _ADMISSION.take(user_id)
    stored_images: list[UserFile] = []
    try:
        # Everything that can fail happens before the turn takes its lock.
        if config is None:
            await load_agent(conversation)
            config = build_turn_config(conversation)
        if on_busy is None:
            # The agent only: load_agent's project read is for the config, done above
            # when the caller gave none.
            if not Conversation.agent.is_cached(conversation):
                await load_agent(conversation)
            on_busy = conversation.agent.on_busy if conversation.agent_id else OnBusy.REJECT
        if config.model_info is None:
            config.model_info = await in_turn_thread(model_info)(config.model)
        if images_base64 and not config.model_info.supports_images:
            # Before the images are stored as files: a refused turn leaves nothing behind.
            raise ModelCannotSeeImages()
        human: HumanMessage | None = None
        if not regenerate:
            human = HumanMessage(content=text)
            if with_files:
                human, stored_images = await in_turn_thread(_human_message_with_files)(
                    conversation, text, file_ids, images_base64, client_message_id
                )
        await _require_model_can_take(conversation, config.model_info, human)
        kind = usage_kind or (UsageKind.REGENERATE if regenerate else UsageKind.TURN)
        charge = _charge(conversation, config, kind)
        start = await in_turn_thread(services.begin_turn)(
            conversation=conversation,
            content=human,
            client_message_id=client_message_id,
            regenerate=regenerate,
            edit_of=edit_of,
            enqueue=on_busy == OnBusy.ENQUEUE,
            charge=charge,
        )
    except BaseException:
        _ADMISSION.release(user_id)
        await _discard_images(stored_images)
        raise
    if start.existing:
        # A concurrent request stored this client_message_id first, with its own files.
        await _discard_images(stored_images)
    if start.existing or start.queued:
        _ADMISSION.release(user_id)
        running = _RUNNING.get(start.turn_id)
        return TurnHandle(
            turn_id=start.turn_id,
            human_message=start.human_message,
            ai_message=start.ai_message,
            existing=start.existing,
            task=running.task if running else None,
            queued=start.queued,
        )
    return _launch(conversation, start, config, hooks, replace(charge, reserved=start.reserved))


async def _discard_images(images: list[UserFile]) -> None:
    """Delete the images stored for a turn that was not started: a refusal leaves nothing.
    Best effort: failing to clean up must not replace the refusal's own error."""
    if not images:
        return
    try:
        await in_turn_thread(file_attachments.discard_images)(images)
    except Exception:
        logger.warning("Could not delete the images of a refused turn", exc_info=True)


def _charge(conversation: Conversation, config: TurnConfig, kind: str) -> Charge:
    """Who pays for the turn's model calls: the conversation's owner, at the prices of
    the turn's model (registry, else settings)."""
    return Charge(
        user_id=conversation.user_id,
        kind=kind,
        model=config.model,
        prices=prices_of(config.model_info),
    )


def validate_on_busy(value: Any) -> str | None:
    """`on_busy` from a client: "reject", "enqueue", or absent (the agent decides)."""
    if value is None or value == "":
        return None
    if value not in OnBusy.values:
        raise ValidationFailed.for_field(
            "on_busy", "invalid_choice", 'on_busy must be "reject" or "enqueue".'
        )
    return value


async def start_queued_turn(conversation_id: int) -> TurnHandle | None:
    """Begin the turn of the conversation's oldest queued message, if it is free.

    Called when a turn of this process ends, and by every process's periodic sweep
    (`start_waiting_queues`): a process that died between turns leaves its queue in the
    database, and whichever process gets the row lock first begins the next turn. A
    queued turn uses the agent's configuration (no socket's hooks); its budget was spent
    when it was sent. At capacity it is left queued for the next sweep."""
    conversation = (
        await Conversation.objects.select_related("agent").filter(pk=conversation_id).afirst()
    )
    if conversation is None or not _ADMISSION.try_take(conversation.user_id):
        return None
    try:
        await load_agent(conversation)  # its project too: the turn gets its instructions
        config = build_turn_config(conversation)
        config.model_info = await in_turn_thread(model_info)(config.model)
        start = await in_turn_thread(services.begin_queued_turn)(conversation_id=conversation_id)
    except BaseException:
        _ADMISSION.release(conversation.user_id)
        raise
    if start is None:
        _ADMISSION.release(conversation.user_id)
        return None
    # Admitted under the quota when it was sent (its reservation waited with it).
    return _launch(conversation, start, config, None, _charge(conversation, config, UsageKind.TURN))


async def start_waiting_queues() -> int:
    """Begin the next turn of every conversation whose queue waits with no turn running
    (the sweep of `conversations.background`); returns how many began."""
    began = 0
    for conversation_id in await in_turn_thread(services.conversations_with_waiting_queue)():
        if await start_queued_turn(conversation_id) is not None:
            began += 1
    return began


_NEXT_TASKS: set[asyncio.Task[Any]] = set()


def _start_next_after(conversation_id: int) -> None:
    """When a turn ended with messages queued behind it: begin the next one, in a task of
    its own (fresh context)."""

    async def next_turn() -> None:
        try:
            await start_queued_turn(conversation_id)
        except Exception:
            # The periodic sweep begins it later.
            logger.warning("Starting the next queued turn failed", exc_info=True)

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(next_turn(), context=contextvars.Context())
    _NEXT_TASKS.add(task)
    task.add_done_callback(_NEXT_TASKS.discard)


async def _run_then_look_at_queue(
    queue: dict[str, bool], conversation_id: int, **turn: Any
) -> ConversationMessage | None:
    """Run the turn (its result: the final AI message, None when the turn was lost), then
    note in `queue["waiting"]` whether messages wait in its conversation's queue: looked
    up inside the turn's own task, so the lookup is part of the turn (a fixed number of
    statements), not a hop that may or may not have run when a caller counts."""
    final = await run_turn(**turn)
    queue["waiting"] = await in_turn_thread(services.has_queued_messages)(conversation_id)
    return final


def _launch(
    conversation: Conversation,
    start: services.TurnStart,
    config: TurnConfig,
    hooks: TurnHooks | None,
    charge: Charge | None = None,
    *,
    resume: ConversationMessage | None = None,
) -> TurnHandle:
    """Run a begun turn (lock taken, placeholder stored) in its own task; with `resume`,
    the rest of a turn that paused for approval (`turns.approval`)."""
    cancel = CancelSignal()
    # Heartbeated from now on, not from its first streamed chunk: under overload a
    # turn's start-up may outlast CONFAB_TURN_STALE_SECONDS.
    ticks.register(
        conversation_id=conversation.pk, turn_id=start.turn_id, on_status=cancel.on_heartbeat
    )
    # A fresh context: create_task copies the caller's, and a request's holds
    # asgiref's ThreadSensitiveContext; inherited, the turn's DB calls fail with
    # "CurrentThreadExecutor already quit" once the request ends, or leak a thread
    # and a connection per turn. It keeps only the request id and the trace
    # (core/request_id.py).
    queue = {"waiting": False}
    task = asyncio.get_running_loop().create_task(
        _run_then_look_at_queue(
            queue,
            conversation.pk,
            conversation=conversation,
            human_message=start.human_message,
            ai_message=start.ai_message,
            turn_id=start.turn_id,
            config=config,
            hooks=hooks or TurnHooks(),
            cancel=cancel,
            charge=charge,
            resume=resume,
        ),
        context=request_id.task_context(),
    )
    _RUNNING[start.turn_id] = RunningTurn(task=task, cancel=cancel)
    user_id = conversation.user_id

    def ended(_: asyncio.Task[ConversationMessage | None]) -> None:
        _RUNNING.pop(start.turn_id, None)
        ticks.unregister(start.turn_id)
        _ADMISSION.release(user_id)
        if queue["waiting"]:
            _start_next_after(conversation.pk)

    task.add_done_callback(ended)
    return TurnHandle(
        turn_id=start.turn_id,
        human_message=start.human_message,
        ai_message=start.ai_message,
        existing=False,
        task=task,
    )


def _human_message_with_files(
    conversation: Conversation,
    text: str,
    file_ids: list[int],
    images_base64: Any,
    client_message_id: str | None,
) -> file_attachments.AttachedMessage:
    """The human message with its file blocks; the files must be the conversation
    owner's (the caller's: surfaces only start turns in the caller's conversations).

    A repeated `client_message_id` stores nothing: its turn is returned as it is (the
    origin's base64 images would otherwise be stored again on every retry)."""
    if client_message_id and images_base64:
        repeated = ConversationMessage.objects.filter(
            conversation_id=conversation.pk, client_message_id=client_message_id
        ).exists()
        if repeated:
            return file_attachments.AttachedMessage(HumanMessage(content=text), [])
    owner = conversation.user if Conversation.user.is_cached(conversation) else None
    if owner is None:
        from django.contrib.auth import get_user_model

        owner = get_user_model()(pk=conversation.user_id)
    return file_attachments.human_message(
        user=owner, text=text, file_ids=file_ids, images_base64=images_base64
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
        active_path(conversation_id, newest_first=True)
        .filter(role=MessageRole.HUMAN)
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
    """The seed's opening: in an empty conversation, send the first-user-message template.

    A turn like any other (`start_turn`): it spends the user's turn budget and
    passes admission. Started once: its human message makes the conversation
    non-empty, so a reconnect does not greet again."""
    if config is None:
        await load_agent(conversation)
        config = build_turn_config(conversation)
    if not config.first_user_message_template or conversation.message_count:
        return None
    if await in_turn_thread(conversation.messages.exists)():
        return None
    content = render_template(config.first_user_message_template, config.context)
    return await start_turn(
        conversation=conversation,
        content=content,
        config=config,
        hooks=hooks,
        usage_kind=UsageKind.GREETING,
    )


async def cancel_turn(*, conversation: Conversation) -> uuid.UUID:
    """Cancel the conversation's running turn, wherever it runs (NoActiveTurn if none)."""
    turn_id = await in_turn_thread(services.request_cancel)(conversation=conversation)
    running = _RUNNING.get(turn_id)
    if running:
        running.cancel.set()
    else:
        # A turn paused for approval runs nowhere: it is ended here.
        await in_turn_thread(approval_services.end_paused_turn)(
            conversation_id=conversation.pk, turn_id=turn_id
        )
    return turn_id


async def wait_for_result(handle: TurnHandle, *, timeout: float | None = None) -> TurnResult:
    """Wait until the turn ended and return its human message and final AI message.

    A turn running in this process is awaited and gives its final message; one running
    elsewhere (a repeated request that landed on another worker), or one that lost its
    lock, is read from the database until it ends.
    """
    timeout = timeout or settings.CONFAB_LLM_TIMEOUT * (settings.CONFAB_TOOL_MAX_ROUNDS + 2)
    deadline = time.monotonic() + timeout
    if handle.task is not None:
        final = await asyncio.wait_for(asyncio.shield(handle.task), timeout=timeout)
        if final is not None:  # this process ran it: its ending is known, nothing to read
            return TurnResult(human_message=handle.human_message, ai_message=final)
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
