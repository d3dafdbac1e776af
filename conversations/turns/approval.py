"""Approve or deny a paused turn's tool calls, and resume the turn: from any surface,
any process.

Every surface calls `decide_tool_call` (REST, GraphQL, the chat websocket) and the
timeout sweep calls `expire_tool_calls` (`conversations.background`). The decision that
leaves no call of the reply pending resumes the turn in this process, from the stored
messages (`runner.TurnRunner._resume`): no process held it while it waited. Resuming
goes through the same admission as a new turn (capacity per process and per user,
before anything is stored); it does not spend the turn budget again (the turn was
paid for when it started).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from conversations import selectors, services
from conversations.approvals import services as approval_services
from conversations.approvals.models import DecidedBy, ToolApproval
from conversations.approvals.selectors import paused_turn_human
from conversations.llm.registry import model_info
from conversations.models import Conversation, ConversationMessage
from conversations.turns import engine
from conversations.turns.config import build_turn_config, load_agent
from conversations.turns.threads import in_turn_thread
from conversations.usage.models import UsageKind
from core.errors import ToolCallAlreadyDecided, ValidationFailed

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000


def validate_call_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ValidationFailed.for_field(
            "call_id", "invalid", "call_id must be a tool call id (1-200 characters)."
        )
    return value


def validate_reason(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON_CHARS:
        raise ValidationFailed.for_field(
            "reason", "invalid", f"reason must be text of at most {MAX_REASON_CHARS} characters."
        )
    return value


async def decide_tool_call(
    *,
    user: Any,
    conversation_id: Any,
    call_id: Any,
    approve: bool,
    reason: Any = None,
) -> ToolApproval:
    """Approve or deny one pending call of the user's conversation; returns the call.

    NotFound (404) for an unknown call or another user's conversation;
    ToolCallAlreadyDecided (409) when it was decided before (twice, after a deny, after
    its timeout); TurnCapacityReached / UserTurnCapacityReached (nothing recorded) when
    the turn could not resume in this process now."""
    conversation = await selectors.aget_conversation(user=user, conversation_id=conversation_id)
    call_id = validate_call_id(call_id)
    reason = validate_reason(reason) if not approve else ""
    decided = await _decide(
        conversation.user_id, conversation.pk, call_id, approve, reason, DecidedBy.USER, take=True
    )
    if decided is None:  # pragma: no cover - `take=True` raises instead
        raise RuntimeError("admission refused without an error")
    if decided.conflict:
        raise ToolCallAlreadyDecided(
            extra={"decision": decided.approval.decision, "decided_by": decided.approval.decided_by}
        )
    return decided.approval


async def _decide(
    user_id: int,
    conversation_id: int,
    call_id: str,
    approve: bool,
    reason: str,
    by: str,
    *,
    take: bool,
) -> approval_services.Decided | None:
    """Record the decision and resume the turn when it was the last one. With `take`,
    refused admission raises; without (the sweep), it returns None and nothing is stored."""
    admission = engine._ADMISSION
    if take:
        admission.take(user_id)
    elif not admission.try_take(user_id):
        return None
    launched = False
    try:
        decided = await in_turn_thread(approval_services.decide_tool_call)(
            user_id=user_id,
            conversation_id=conversation_id,
            call_id=call_id,
            approve=approve,
            reason=reason,
            by=by,
        )
        if decided.resume is not None:
            await _resume(conversation_id, decided.resume)
            launched = True
        return decided
    finally:
        if not launched:
            admission.release(user_id)


async def _resume(conversation_id: int, paused: ConversationMessage) -> None:
    """Run the rest of a turn whose calls are all decided, in a task of this process
    (the admission slot taken for the decision goes with it)."""
    conversation = await Conversation.objects.select_related("agent").aget(pk=conversation_id)
    try:
        await load_agent(conversation)
        config = build_turn_config(conversation)
        config.model_info = await in_turn_thread(model_info)(config.model)
        human = await in_turn_thread(paused_turn_human)(conversation_id, paused.turn_id)
    except Exception:
        # The turn holds its lock with a fresh heartbeat but runs nowhere: release it,
        # so the conversation is not blocked until the recovery sweep.
        logger.exception("Resuming turn %s failed", paused.turn_id)
        await in_turn_thread(services.end_turn)(
            conversation_id=conversation_id, turn_id=paused.turn_id
        )
        raise
    start = services.TurnStart(turn_id=paused.turn_id, human_message=human, ai_message=paused)
    # Its model calls are the turn's: charged like any turn (no new admission: a paused
    # turn's quota reservation holds while it waits).
    charge = engine._charge(conversation, config, UsageKind.TURN)
    engine._launch(conversation, start, config, None, charge, resume=paused)


async def expire_tool_calls() -> int:
    """Deny every pending call past CONFAB_TOOL_APPROVAL_TIMEOUT and resume its turn
    (the periodic sweep of every process; a call whose turn cannot resume here now, at
    capacity, waits for the next sweep). Returns how many calls were denied."""
    denied = 0
    for user_id, conversation_id, call_id in await in_turn_thread(
        approval_services.expired_calls
    )():
        try:
            decided = await _decide(
                user_id, conversation_id, call_id, False, "", DecidedBy.TIMEOUT, take=False
            )
        except Exception:
            logger.warning("Expiring tool call %s failed", call_id, exc_info=True)
            continue
        if decided is not None and not decided.conflict:
            denied += 1
    return denied


def sweep_seconds() -> float:
    """How often the timeout sweep runs: a tenth of the timeout, between 1 s and 60 s."""
    return min(60.0, max(1.0, float(settings.CONFAB_TOOL_APPROVAL_TIMEOUT) / 10))
