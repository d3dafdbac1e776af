"""Turns left `streaming` by a dead worker are ended `failed`/`interrupted`, locks released."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.events import conversation_group
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.recovery import recover_once
from conversations.turns import TurnHooks, start_turn, wait_for_result
from conversations.turns.engine import _RUNNING
from tests.support.turns import GroupListener, eventually, turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def dead_turn(conversation, text="never answered"):
    """A turn whose worker died: its state was stored, and nothing ever ran it."""
    return services.begin_turn(conversation=conversation, content=HumanMessage(content=text))


def test_the_sweeper_ends_a_dead_turn_and_releases_its_lock(conversation):
    start = dead_turn(conversation)
    ConversationMessage.objects.filter(pk=start.ai_message.pk).update(text="half an ans")

    assert services.recover_interrupted_turns(stale_after=0) == 1

    human = ConversationMessage.objects.get(pk=start.human_message.pk)
    ai = ConversationMessage.objects.get(pk=start.ai_message.pk)
    assert human.status == MessageStatus.COMPLETE and human.text == "never answered"
    assert ai.status == MessageStatus.FAILED
    assert ai.error["code"] == "interrupted"
    assert ai.text == "half an ans" and ai.content["_value"]["content"] == "half an ans"
    conversation.refresh_from_db()
    assert conversation.active_turn_id is None and conversation.active_turn_heartbeat_at is None
    # Nothing left to do; the conversation takes a new turn.
    assert services.recover_interrupted_turns(stale_after=0) == 0
    services.begin_turn(conversation=conversation, content=HumanMessage(content="again"))


def test_the_management_command_runs_the_sweep(conversation):
    start = dead_turn(conversation)
    out = StringIO()
    call_command("recover_turns", "--stale-after", "0", stdout=out)
    assert "Ended 1 interrupted message(s)." in out.getvalue()
    assert ConversationMessage.objects.get(pk=start.ai_message.pk).error["code"] == "interrupted"
    assert Conversation.objects.get(pk=conversation.pk).active_turn_id is None


def test_a_turn_with_a_recent_heartbeat_is_left_alone(conversation, settings):
    start = dead_turn(conversation)
    assert recover_once() == 0  # CONFAB_TURN_STALE_SECONDS (30 s) have not passed
    assert services.recover_interrupted_turns(stale_after=60) == 0
    Conversation.objects.filter(pk=conversation.pk).update(
        active_turn_heartbeat_at=timezone.now()
        - timedelta(seconds=settings.CONFAB_TURN_STALE_SECONDS + 1)
    )
    assert recover_once() == 1
    assert ConversationMessage.objects.get(pk=start.ai_message.pk).status == MessageStatus.FAILED


def test_a_streaming_row_without_a_lock_is_ended_too(conversation):
    # A reply left streaming by a worker that died between two writes.
    row = services.append_message(
        conversation=conversation, message=AIMessage(content="orphan"), status="streaming"
    )
    ConversationMessage.objects.filter(pk=row.pk).update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    assert services.recover_interrupted_turns(stale_after=60) == 1
    row.refresh_from_db()
    assert row.status == MessageStatus.FAILED and row.error["code"] == "interrupted"


async def test_recovery_publishes_the_failure(conversation):
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        start = await sync_to_async(dead_turn)(conversation)
        await sync_to_async(services.recover_interrupted_turns)(stale_after=0)
        failed = await listener.until_type("message.failed")
        updated = await listener.until(
            lambda e: (
                e["type"] == "conversation.updated" and e["conversation"]["active_turn_id"] is None
            )
        )
    assert failed["message"]["id"] == start.ai_message.pk
    assert failed["error"]["code"] == "interrupted"
    assert updated["conversation_id"] == conversation.pk


async def test_a_recovered_turn_that_was_still_alive_writes_nothing_more(llm, conversation):
    # A worker that only looked dead (stale_after=0): its late writes become no-ops.
    llm.reply_text([f"w{i} " for i in range(20)], chunk_delay=0.05)
    handle = await start_turn(conversation=conversation, content="slow")
    await eventually(lambda: len(llm.requests[0].chunks) > 3 if llm.requests else False)
    assert await sync_to_async(services.recover_interrupted_turns)(stale_after=0) == 1
    await handle.task
    ai = await ConversationMessage.objects.aget(pk=handle.ai_message.pk)
    assert ai.status == MessageStatus.FAILED and ai.error["code"] == "interrupted"
    assert (await Conversation.objects.aget(pk=conversation.pk)).active_turn_id is None
    # The conversation is free for the next turn.
    llm.reply_text(["next"])
    result = await wait_for_result(await start_turn(conversation=conversation, content="again"))
    assert result.ai_message.status == MessageStatus.COMPLETE


# --- liveness: a process heartbeats all its turns, from the moment each took its lock ---


class StalledStart(TurnHooks):
    """A turn whose start-up waits, as under overload, until `go` is set."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.go = asyncio.Event()

    async def aget_previous_messages(self, conversation, up_to_id):
        self.waiting.set()
        await self.go.wait()
        return await super().aget_previous_messages(conversation, up_to_id)


async def test_a_live_turn_survives_the_sweep_during_its_start_up_and_a_dead_one_does_not(
    llm, user, plain_agent, conversation, settings
):
    settings.CONFAB_TURN_STALE_SECONDS = 1.0
    settings.CONFAB_TURN_HEARTBEAT_SECONDS = 0.1
    other = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    dead = await sync_to_async(dead_turn)(other)
    llm.reply_text(["made ", "it"])
    hooks = StalledStart()
    handle = await start_turn(conversation=conversation, content="slow start", hooks=hooks)
    await hooks.waiting.wait()
    # Both locks are now older than the staleness; only the dead one went unheartbeated.
    await asyncio.sleep(settings.CONFAB_TURN_STALE_SECONDS * 2)

    assert await sync_to_async(recover_once)() == 1

    dead_ai = await ConversationMessage.objects.aget(pk=dead.ai_message.pk)
    assert dead_ai.status == MessageStatus.FAILED and dead_ai.error["code"] == "interrupted"
    assert (await Conversation.objects.aget(pk=other.pk)).active_turn_id is None
    assert (await Conversation.objects.aget(pk=conversation.pk)).active_turn_id == handle.turn_id
    assert llm.requests == []
    hooks.go.set()
    result = await wait_for_result(handle, timeout=10)
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert result.ai_message.text == "made it"


async def test_a_turn_waiting_for_its_first_chunk_survives_the_sweep(llm, conversation, settings):
    settings.CONFAB_TURN_STALE_SECONDS = 1.0
    settings.CONFAB_TURN_HEARTBEAT_SECONDS = 0.1
    # The provider takes longer than the staleness to send anything.
    llm.reply_text(["late ", "but here"], initial_delay=2.5)
    handle = await start_turn(conversation=conversation, content="anyone?")
    await eventually(lambda: bool(llm.requests), what="the provider request")
    await asyncio.sleep(settings.CONFAB_TURN_STALE_SECONDS * 1.5)

    assert await sync_to_async(recover_once)() == 0

    result = await wait_for_result(handle, timeout=10)
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert result.ai_message.text == "late but here"


async def test_a_turn_recovered_during_its_start_up_stops_before_the_provider(
    llm, conversation, settings
):
    # Its lock taken away (a sweep that judged it dead): the heartbeat tells the turn,
    # which then neither calls the provider nor writes anything.
    settings.CONFAB_TURN_HEARTBEAT_SECONDS = 0.1
    llm.reply_text(["never sent"])
    hooks = StalledStart()
    handle = await start_turn(conversation=conversation, content="too slow", hooks=hooks)
    await hooks.waiting.wait()
    assert await sync_to_async(services.recover_interrupted_turns)(stale_after=0) == 1
    await eventually(lambda: handle.task is not None and _stopping(handle), what="lost seen")
    hooks.go.set()
    assert await handle.task is None
    ai = await ConversationMessage.objects.aget(pk=handle.ai_message.pk)
    assert ai.status == MessageStatus.FAILED and ai.error["code"] == "interrupted"
    assert llm.requests == []


def _stopping(handle) -> bool:
    """The turn's heartbeat has told it that its lock is gone."""
    running = _RUNNING.get(handle.turn_id)
    return running is not None and running.cancel.lost
