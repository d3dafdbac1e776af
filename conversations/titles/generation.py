"""Generating a conversation's title in the background, after its first reply.

`schedule_title` is called by the turn runner once a reply is complete and stored (its
`message.completed` already published). It never blocks or fails the turn: the title is
asked for in a task of its own, and whatever goes wrong there (the provider fails or is
slow, the answer is empty, the database is busy) is logged and leaves the title empty.

Its own budget, not the user's turn budget (conversations/turn_budget.py): a title call
is the server's housekeeping, not a turn the user asked for. It is bounded instead by
- one attempt per conversation (`services.claim_title_attempt`, across processes);
- CONFAB_TITLE_MAX_TOKENS output tokens and CONFAB_TITLE_TIMEOUT seconds per call;
- CONFAB_TITLE_MAX_CONCURRENT calls per process (beyond: skipped, not claimed, so the
  conversation's next reply tries again);
and accounted like every provider call (`tracing.provider_call`: span, latency, errors,
tokens). Its tokens are recorded as the user's usage, kind `title` (conversations/usage),
and the quota admits it like the user's turns (DESIGN: every model call is admitted):
once the user's recorded usage has reached a limit, no title is asked for, and the
attempt is not spent (a reply after the quota resets names the conversation). It takes
no reservation: it runs after an admitted turn and is bounded by its few tokens.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.utils import timezone

from conversations.llm.providers import ModelSpec, get_chat_model
from conversations.llm.titling import clean_title, title_request
from conversations.models import Conversation, ConversationMessage, MessageStatus, TitleSource
from conversations.services.conversations import MAX_TITLE_CHARS
from conversations.titles import services
from conversations.turns.config import TurnConfig
from conversations.turns.failures import classify_failure
from conversations.turns.threads import in_turn_thread
from conversations.usage import selectors as usage_selectors
from conversations.usage import services as usage
from conversations.usage.models import UsageKind
from core import request_id, tracing

logger = logging.getLogger(__name__)

# Title tasks of this process (asyncio keeps only weak references to tasks).
_TASKS: set[asyncio.Task[Any]] = set()


def enabled() -> bool:
    """CONFAB_AUTO_TITLES (default on), read per reply so a changed setting applies at once."""
    return bool(getattr(settings, "CONFAB_AUTO_TITLES", True))


def max_concurrent() -> int:
    """CONFAB_TITLE_MAX_CONCURRENT (default 16): title calls one process runs at once."""
    return max(1, int(settings.CONFAB_TITLE_MAX_CONCURRENT))


def title_spec(config: TurnConfig) -> ModelSpec:
    """The conversation's own model and provider, its output bounded for a title."""
    spec = config.model_spec
    bound = max(1, int(settings.CONFAB_TITLE_MAX_TOKENS))
    if spec.max_output_tokens:
        bound = min(bound, spec.max_output_tokens)
    return replace(spec, max_output_tokens=bound)


def needs_title(conversation: Conversation) -> bool:
    """What the caller's copy of the row says (no query): untitled, attempt not taken.
    A stale copy only costs the claim's UPDATE, which checks the stored row."""
    return (
        not conversation.title
        and conversation.title_source == TitleSource.NONE
        and conversation.title_attempted_at is None
    )


def schedule_title(
    *,
    conversation: Conversation,
    human_message: ConversationMessage,
    reply: ConversationMessage,
    config: TurnConfig,
    charge: usage.Charge | None = None,
) -> asyncio.Task[Any] | None:
    """Ask for the conversation's title in a background task after a complete reply, when
    titles are on, the conversation looks untitled and this process has room; returns
    the task (None when none was started). Not after a greeting: it answers the agent's
    own template, and the user's first message names the conversation better."""
    if not enabled() or reply.status != MessageStatus.COMPLETE or not needs_title(conversation):
        return None
    if charge is not None and charge.kind == UsageKind.GREETING:
        return None
    user_text, reply_text = human_message.text or "", reply.text or ""
    if not (user_text.strip() or reply_text.strip()):
        return None
    if len(_TASKS) >= max_concurrent():
        logger.info(
            "Title of conversation %s skipped: %d title calls running.",
            conversation.pk,
            len(_TASKS),
        )
        return None
    # A fresh context (request id and trace kept), as for turns (engine._launch).
    task = asyncio.get_running_loop().create_task(
        generate_title(
            conversation_id=conversation.pk,
            user_text=user_text,
            reply_text=reply_text,
            spec=title_spec(config),
            charge=charge,
        ),
        context=request_id.task_context(),
    )
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    # The caller's copy (a socket keeps its conversation for all its turns) need not
    # try again: the attempt is this task's, whatever its outcome.
    conversation.title_attempted_at = timezone.now()
    return task


async def generate_title(
    *,
    conversation_id: int,
    user_text: str,
    reply_text: str,
    spec: ModelSpec,
    charge: usage.Charge | None = None,
) -> str | None:
    """Claim the conversation's attempt, ask the model, store the cleaned title; returns
    the stored title, None when nothing was stored (never raises, but for cancellation)."""
    try:
        if charge is not None and await in_turn_thread(usage_selectors.quota_used_up)(
            charge.user_id
        ):
            logger.info("Title of conversation %s skipped: quota used up.", conversation_id)
            return None
        if not await in_turn_thread(services.claim_title_attempt)(conversation_id=conversation_id):
            return None
        answer = await asyncio.wait_for(
            ask_model(spec, user_text, reply_text, charge=charge, conversation_id=conversation_id),
            timeout=settings.CONFAB_TITLE_TIMEOUT,
        )
        title = clean_title(answer, max_chars=MAX_TITLE_CHARS)
        if not title:
            logger.warning(
                "Title of conversation %s: the model's answer was empty.", conversation_id
            )
            return None
        stored = await in_turn_thread(services.store_generated_title)(
            conversation_id=conversation_id, title=title
        )
        if stored is None:
            logger.info("Title of conversation %s not stored: titled meanwhile.", conversation_id)
            return None
        return title
    except TimeoutError:
        logger.warning(
            "Title of conversation %s: no answer within %s s; left empty.",
            conversation_id,
            settings.CONFAB_TITLE_TIMEOUT,
        )
    except Exception as exc:  # a title never fails anything: logged
        code, _ = classify_failure(exc)
        logger.warning(
            "Title of conversation %s failed (%s); left empty.",
            conversation_id,
            code,
            exc_info=True,
        )
    return None


async def ask_model(
    spec: ModelSpec,
    user_text: str,
    reply_text: str,
    *,
    charge: usage.Charge | None = None,
    conversation_id: int | None = None,
) -> str:
    """The model's answer to the title request, streamed as turns are (the one code path
    every provider is tested on), accounted as a provider call and, with a `charge`,
    recorded as the user's usage (kind `title`)."""
    model = get_chat_model(spec)
    with tracing.provider_call(model, classify=classify_failure) as call:
        reply = None
        async for chunk in model.astream(title_request(user_text, reply_text)):
            reply = chunk if reply is None else reply + chunk
        if reply is None:
            return ""
        call.record_usage(reply)
    if charge is not None:
        await in_turn_thread(usage.record_title_call)(
            charge=charge, conversation_id=conversation_id, message=reply
        )
    return reply.text


async def drain(timeout: float = 10.0) -> None:
    """Wait for this process's title tasks (tests; shutdown cancels them instead)."""
    tasks = list(_TASKS)
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


def cancel_all() -> None:
    """Cancel the title tasks of this process (shutdown: their titles stay empty)."""
    for task in list(_TASKS):
        task.cancel()
