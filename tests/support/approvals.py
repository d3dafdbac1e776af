"""Helpers of the tool approval tests (not a test module): an agent whose calculator
calls wait for the user's approval, and waiting for a resumed turn to end."""

from __future__ import annotations

from conversations.models import Agent, Conversation, ConversationMessage
from tests.support.turns import eventually


def guarded_agent() -> Agent:
    """An agent offering the calculator and the clock; calculator calls need approval."""
    return Agent.objects.create(
        slug="guarded",
        name="Guarded",
        system_prompt_template="You calculate.",
        tools=["calculator", "current_time"],
        tools_requiring_approval=["calculator"],
    )


async def turn_ended(conversation: Conversation, timeout: float = 10.0) -> ConversationMessage:
    """Wait until the conversation's turn released its lock; its last message."""

    async def free() -> bool:
        row = await Conversation.objects.aget(pk=conversation.pk)
        return row.active_turn_id is None

    await eventually(free, timeout=timeout, what="the resumed turn to end")
    return await ConversationMessage.objects.filter(conversation_id=conversation.pk).alast()


async def paused(conversation: Conversation, timeout: float = 10.0) -> ConversationMessage:
    """Wait until the conversation's turn paused for approval; its paused reply."""

    async def waiting() -> ConversationMessage | None:
        return await ConversationMessage.objects.filter(
            conversation_id=conversation.pk, status="awaiting_approval"
        ).afirst()

    return await eventually(waiting, timeout=timeout, what="the turn to pause")
