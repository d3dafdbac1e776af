"""The periodic writes of running turns, batched per process (conversations.turns.ticks)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from langchain_core.messages import HumanMessage

from bench.common import QueryLog
from conversations import services
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.turns.ticks import tick_turn

pytestmark = pytest.mark.django_db(transaction=True)


def start_turns(user, agent, count: int) -> list[services.TurnStart]:
    starts = []
    for index in range(count):
        conversation = services.create_conversation(user=user, agent=agent, title=f"t{index}")
        starts.append(
            services.begin_turn(conversation=conversation, content=HumanMessage(f"q{index}"))
        )
    return starts


def tick_of(start: services.TurnStart, text: str | None, touch: bool) -> services.TurnTick:
    return services.TurnTick(
        conversation_id=start.ai_message.conversation_id,
        turn_id=start.turn_id,
        message_id=start.ai_message.pk,
        text=text,
        touch=touch,
    )


def test_tick_turns_saves_texts_heartbeats_and_reports_status(user, plain_agent):
    running, cancelled, cleared = start_turns(user, plain_agent, 3)
    services.request_cancel(
        conversation=Conversation.objects.get(pk=cancelled.ai_message.conversation_id)
    )
    services.clear_conversation(
        conversation=Conversation.objects.get(pk=cleared.ai_message.conversation_id)
    )
    before = Conversation.objects.get(pk=running.ai_message.conversation_id)
    statuses = services.tick_turns(
        ticks=[
            tick_of(running, "partial one", touch=True),
            tick_of(cancelled, "partial two", touch=True),
            tick_of(cleared, "partial three", touch=True),
        ]
    )
    assert statuses == {
        running.turn_id: "running",
        cancelled.turn_id: "cancel",
        cleared.turn_id: "lost",
    }
    texts = dict(ConversationMessage.objects.filter(role="ai").values_list("turn_id", "text"))
    assert texts == {running.turn_id: "partial one", cancelled.turn_id: "partial two"}
    after = Conversation.objects.get(pk=running.ai_message.conversation_id)
    assert after.active_turn_heartbeat_at > before.active_turn_heartbeat_at


def test_a_finished_message_keeps_its_final_text(user, plain_agent):
    (start,) = start_turns(user, plain_agent, 1)
    ConversationMessage.objects.filter(pk=start.ai_message.pk).update(
        status=MessageStatus.COMPLETE, text="final"
    )
    services.tick_turns(ticks=[tick_of(start, "late partial", touch=False)])
    assert ConversationMessage.objects.get(pk=start.ai_message.pk).text == "final"


async def test_concurrent_ticks_share_commits(user, plain_agent):
    starts = await sync_to_async(start_turns)(user, plain_agent, 30)
    log = QueryLog()
    log.start()
    try:
        statuses = await asyncio.gather(
            *(
                tick_turn(
                    conversation_id=start.ai_message.conversation_id,
                    turn_id=start.turn_id,
                    message_id=start.ai_message.pk,
                    text=f"text {index}",
                    touch=True,
                )
                for index, start in enumerate(starts)
            )
        )
    finally:
        log.stop()
    assert statuses == ["running"] * 30
    saved = await sync_to_async(
        lambda: sorted(ConversationMessage.objects.filter(role="ai").values_list("text", flat=True))
    )()
    assert saved == sorted(f"text {index}" for index in range(30))
    # 30 turns' writes went out in a few batches, not 30 transactions of their own.
    partial_updates = [sql for sql in log.statements if "unnest" in sql or '"text"' in sql]
    assert 1 <= len(partial_updates) <= 3, len(partial_updates)
