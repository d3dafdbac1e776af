"""Reads of tool approval: a paused turn's stored state, a conversation's pending calls."""

from __future__ import annotations

import uuid
from typing import Any

from conversations.approvals.models import DecidedBy, ToolApproval
from conversations.approvals.services import (
    DENIED_BY_CANCEL,
    DENIED_BY_TIMEOUT,
    DENIED_BY_USER,
)
from conversations.models import ConversationMessage, MessageRole
from conversations.selectors import get_conversation


def paused_turn_state(
    conversation_id: int, turn_id: uuid.UUID, paused_id: int
) -> tuple[int, list[ConversationMessage], dict[str, ToolApproval]]:
    """What a resumed turn starts from: the id of the turn's first AI message, the turn's
    own messages (its replies and tool results) up to the paused reply, oldest first, and
    the decisions on the paused reply's calls by call id."""
    rows = list(
        ConversationMessage.objects.filter(
            conversation_id=conversation_id, turn_id=turn_id, id__lte=paused_id
        )
        .exclude(role=MessageRole.HUMAN)
        .order_by("id")
    )
    decisions = {
        approval.call_id: approval for approval in ToolApproval.objects.filter(message_id=paused_id)
    }
    return (rows[0].id if rows else paused_id), rows, decisions


def paused_turn_human(conversation_id: int, turn_id: uuid.UUID) -> ConversationMessage | None:
    """The human message a paused turn answers: the one stored with the turn's id, else
    (a regenerate answers an older message) the last one before the turn's first row.
    Not merely the last before the paused reply: a message sent (queued) while the turn
    ran is stored between its rows."""
    humans = ConversationMessage.objects.filter(
        conversation_id=conversation_id, role=MessageRole.HUMAN
    )
    own = humans.filter(turn_id=turn_id).order_by("id").first()
    if own is not None:
        return own
    first = (
        ConversationMessage.objects.filter(conversation_id=conversation_id, turn_id=turn_id)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    return humans.filter(id__lt=first).order_by("-id").first() if first else None


def denial_text(approval: ToolApproval) -> str:
    """What the model is told about a call that did not run."""
    if approval.decided_by == DecidedBy.TIMEOUT:
        return DENIED_BY_TIMEOUT
    if approval.decided_by == DecidedBy.CANCEL:
        return DENIED_BY_CANCEL
    return DENIED_BY_USER


def pending_tool_calls(*, user: Any, conversation_id: Any) -> list[ToolApproval]:
    """The calls of the user's conversation that wait for a decision, oldest first
    (NotFound for another user's conversation)."""
    conversation = get_conversation(user=user, conversation_id=conversation_id)
    return list(
        ToolApproval.objects.filter(conversation_id=conversation.pk, decision="").order_by("id")
    )
