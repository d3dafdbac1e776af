"""Writes of tool approval: pause a turn on its calls, record decisions, end a paused turn.

The paused turn keeps its conversation's lock (`active_turn_id`): a new message while it
waits is TURN_IN_PROGRESS (or queued, with on_busy "enqueue"), exactly as while a reply
streams, and the recovery sweep leaves it alone (it has no worker to lose). Decisions
lock the conversation row first, then the calls: of two devices deciding the last call
at once, one records it and resumes the turn, the other gets 409.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from langchain_core.messages import AIMessage

from conversations.approvals.models import DecidedBy, Decision, ToolApproval
from conversations.effects import emit, reply_ended, write
from conversations.events import EventType, approval_event, message_event
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.selectors import paused_replies
from conversations.services.turns import _locked_conversation, _locking, _release, finish_message
from conversations.usage.services import Charge
from core.errors import NotFound

DENIED_BY_USER = "The user denied this tool call."
DENIED_BY_TIMEOUT = "The user did not approve this tool call in time; it did not run."
DENIED_BY_CANCEL = "The turn was cancelled before this tool call was approved; it did not run."


def approval_timeout() -> float:
    """CONFAB_TOOL_APPROVAL_TIMEOUT: seconds a call waits for a decision before it is
    denied. Read per pause, so a changed setting (a test's) applies at once."""
    return float(settings.CONFAB_TOOL_APPROVAL_TIMEOUT)


@write
def pause_for_approval(
    *,
    conversation_id: int,
    turn_id: uuid.UUID,
    message_id: int,
    message: AIMessage,
    model: str,
    calls: list[dict[str, Any]],
    charge: Charge | None = None,
) -> ConversationMessage:
    """Store the reply with its tool calls as `awaiting_approval` and one pending row per
    call in `calls`; announce `tool.approval_requested`. The lock stays with the turn.
    `charge`: who pays for the model call that asked (recorded like any round's)."""
    conversation = _locked_conversation(conversation_id, turn_id)
    row = finish_message(
        conversation_id=conversation_id,
        turn_id=turn_id,
        message_id=message_id,
        message=message,
        status=MessageStatus.AWAITING_APPROVAL,
        model=model,
        charge=charge,
    )
    deadline = timezone.now() + timedelta(seconds=approval_timeout())
    approvals = ToolApproval.objects.bulk_create(
        [
            ToolApproval(
                conversation_id=conversation_id,
                user_id=conversation.user_id,
                message=row,
                turn_id=turn_id,
                call_id=call["id"] or "",
                tool_name=call["name"] or "",
                arguments=call.get("args") or {},
                deadline=deadline,
            )
            for call in calls
        ]
    )
    emit(
        approval_event(EventType.TOOL_APPROVAL_REQUESTED, row, approvals),
        user_id=conversation.user_id,
    )
    # The user may be away: pushed (Web Push, the webhook) like a reply that ended.
    reply_ended(row, conversation)
    return row


@dataclass
class Decided:
    """What a decision did: the call as it is now; `conflict` when it had been decided
    before (the caller answers 409 after this commit); `resume` (the paused AI message,
    now `complete`) when it was the message's last pending call: the caller runs the rest
    of the turn."""

    approval: ToolApproval
    conflict: bool = False
    resume: ConversationMessage | None = None


@write
def decide_tool_call(
    *,
    user_id: int,
    conversation_id: int,
    call_id: str,
    approve: bool,
    reason: str = "",
    by: str = DecidedBy.USER,
) -> Decided:
    """Record the user's (or the timeout's) decision on a pending call.

    NotFound for another user's conversation or an unknown call. A call whose deadline
    passed is denied by the timeout here (the sweep may not have reached it yet) and the
    late decision is a conflict. The message's last decision takes the turn back: the
    reply becomes `complete`, the lock's heartbeat restarts (from now on the turn is
    running again, and recovered like any if its process dies)."""
    conversation = _locking().filter(pk=conversation_id, user_id=user_id).first()
    if conversation is None:
        raise NotFound("Conversation not found.")
    approval = (
        ToolApproval.objects.select_for_update()
        .filter(conversation_id=conversation_id, call_id=call_id)
        .order_by("-id")
        .first()
    )
    if approval is None:
        raise NotFound("Tool call not found.")
    if not approval.pending:
        return Decided(approval=approval, conflict=True)
    now = timezone.now()
    late = by == DecidedBy.USER and approval.deadline <= now
    if late:
        _record(approval, Decision.DENIED, DecidedBy.TIMEOUT, "", now)
    else:
        decision = Decision.APPROVED if approve else Decision.DENIED
        _record(approval, decision, by, reason, now)
    message = ConversationMessage.objects.get(pk=approval.message_id)
    emit(approval_event(EventType.TOOL_APPROVAL_DECIDED, message, [approval]), user_id=user_id)
    resume = _take_back(conversation, message, now)
    return Decided(approval=approval, conflict=late, resume=resume)


def _record(approval: ToolApproval, decision: str, by: str, reason: str, now: Any) -> None:
    approval.decision = decision
    approval.decided_by = by
    approval.reason = reason
    approval.decided_at = now
    approval.save(update_fields=["decision", "decided_by", "reason", "decided_at"])


def _take_back(
    conversation: Conversation, message: ConversationMessage, now: Any
) -> ConversationMessage | None:
    """When no call of `message` waits any more: the paused turn runs again."""
    if ToolApproval.objects.filter(message_id=message.pk, decision="").exists():
        return None
    if (
        message.status != MessageStatus.AWAITING_APPROVAL
        or conversation.active_turn_id != message.turn_id
    ):
        return None  # the turn ended meanwhile (cancelled, recovered)
    message.status = MessageStatus.COMPLETE
    message.save(update_fields=["status", "updated_at"])
    conversation.active_turn_heartbeat_at = now
    conversation.save(update_fields=["active_turn_heartbeat_at", "updated_at"])
    emit(message_event(EventType.MESSAGE_COMPLETED, message), user_id=conversation.user_id)
    return message


@write
def end_paused_turn(*, conversation_id: int, turn_id: uuid.UUID) -> ConversationMessage | None:
    """Cancel a turn that waits for approval (no process runs it to see the cancel flag):
    its pending calls are denied (`decided_by` "cancel") and never run, its reply ends
    `cancelled`, the lock is released. None when the turn is not paused."""
    conversation = _locking().filter(pk=conversation_id, active_turn_id=turn_id).first()
    if conversation is None:
        return None
    message = paused_replies(conversation_id, turn_id).order_by("-id").first()
    if message is None:
        return None
    now = timezone.now()
    for approval in ToolApproval.objects.select_for_update().filter(
        message_id=message.pk, decision=""
    ):
        _record(approval, Decision.DENIED, DecidedBy.CANCEL, "", now)
        emit(
            approval_event(EventType.TOOL_APPROVAL_DECIDED, message, [approval]),
            user_id=conversation.user_id,
        )
    message.status = MessageStatus.CANCELLED
    message.save(update_fields=["status", "updated_at"])
    emit(message_event(EventType.MESSAGE_COMPLETED, message), user_id=conversation.user_id)
    _release(conversation)
    reply_ended(message, conversation)
    return message


def expired_calls(*, limit: int = 100) -> list[tuple[int, int, str]]:
    """(user id, conversation id, call id) of pending calls past their deadline, oldest
    first (the timeout sweep's work)."""
    return list(
        ToolApproval.objects.filter(decision="", deadline__lte=timezone.now())
        .order_by("deadline")
        .values_list("user_id", "conversation_id", "call_id")[:limit]
    )
