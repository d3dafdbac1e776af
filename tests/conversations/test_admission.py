"""Admission control: at most CONFAB_MAX_TURNS_PER_PROCESS turns start or run in one
process; beyond, a turn is refused (TURN_CAPACITY_REACHED, retry after) before anything
is stored. The engine and the chat websocket here; REST and GraphQL in tests/api."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.turns import start_turn, wait_for_result
from conversations.turns.config import CAPACITY_RETRY_AFTER_SECONDS
from conversations.turns.engine import admitted_turn_count
from core.errors import NothingToRegenerate, TurnCapacityReached
from tests.support.sockets import Socket, ws_path
from tests.support.turns import eventually, turn_cleanup  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


async def new_conversations(user, agent, count: int) -> list:
    return [
        await sync_to_async(services.create_conversation)(user=user, agent=agent, title=f"c{i}")
        for i in range(count)
    ]


async def stored_count(conversation_id: int) -> int:
    return await ConversationMessage.objects.filter(conversation_id=conversation_id).acount()


async def test_a_turn_beyond_the_cap_is_refused_and_nothing_is_stored(
    llm, user, plain_agent, settings
):
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 1
    busy, refused = await new_conversations(user, plain_agent, 2)
    llm.reply_text(["slow ", "one"], initial_delay=0.5)
    running = await start_turn(conversation=busy, content="first")

    with pytest.raises(TurnCapacityReached) as caught:
        await start_turn(conversation=refused, content="second", client_message_id="c-2")
    assert caught.value.status == 503
    assert caught.value.as_dict()["code"] == "TURN_CAPACITY_REACHED"
    assert caught.value.extra == {"retry_after": CAPACITY_RETRY_AFTER_SECONDS}
    assert await stored_count(refused.pk) == 0
    assert (await Conversation.objects.aget(pk=refused.pk)).active_turn_id is None

    await wait_for_result(running, timeout=10)
    await eventually(lambda: admitted_turn_count() == 0, what="the slot given back")
    # A slot is free again: the same request (same client_message_id) now runs.
    llm.reply_text(["ok"])
    result = await wait_for_result(
        await start_turn(conversation=refused, content="second", client_message_id="c-2"),
        timeout=10,
    )
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert len(llm.requests) == 2


async def test_a_burst_admits_exactly_the_cap(llm, user, plain_agent, settings):
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 3
    conversations = await new_conversations(user, plain_agent, 7)
    llm.reply_text(["answer"])
    # All at once: the starts overlap while their first queries are in flight.
    outcomes = await asyncio.gather(
        *(start_turn(conversation=c, content="hello") for c in conversations),
        return_exceptions=True,
    )
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(admitted) == 3
    assert all(isinstance(o, TurnCapacityReached) for o in outcomes if o not in admitted)
    for handle in admitted:
        assert (await wait_for_result(handle, timeout=10)).ai_message.status == "complete"
    counts = [await stored_count(c.pk) for c in conversations]
    assert sorted(counts) == [0, 0, 0, 0, 2, 2, 2]
    await eventually(lambda: admitted_turn_count() == 0, what="the slots given back")


async def test_a_start_that_fails_gives_its_slot_back(llm, conversation, settings):
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 1
    # Nothing to regenerate in an empty conversation: refused by the service.
    with pytest.raises(NothingToRegenerate):
        await start_turn(conversation=conversation, regenerate=True)
    assert admitted_turn_count() == 0
    llm.reply_text(["fine"])
    result = await wait_for_result(
        await start_turn(conversation=conversation, content="now"), timeout=10
    )
    assert result.ai_message.status == MessageStatus.COMPLETE


async def test_websocket_refusal_is_an_error_frame(llm, user, plain_agent, token, settings):
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 1
    busy, refused = await new_conversations(user, plain_agent, 2)
    llm.reply_text(["slow"], initial_delay=0.5)
    first = Socket(ws_path(busy.pk), token)
    second = Socket(ws_path(refused.pk), token)
    assert (await first.connect())["type"] == "ready"
    assert (await second.connect())["type"] == "ready"
    await first.send({"type": "message", "content": "one"})
    await first.until("message.created", role="ai")

    await second.send({"type": "message", "content": "two", "client_message_id": "w-2"})
    error = await second.until("error")
    assert error == {
        "type": "error",
        "code": "TURN_CAPACITY_REACHED",
        "detail": TurnCapacityReached.default_detail,
        "retry_after": CAPACITY_RETRY_AFTER_SECONDS,
    }
    assert await stored_count(refused.pk) == 0
    # The socket stays usable: once the other turn ended, the retry runs.
    await first.until("message.completed", role="ai")
    await eventually(lambda: admitted_turn_count() == 0, what="the slot given back")
    llm.reply_text(["now"])
    await second.send({"type": "message", "content": "two", "client_message_id": "w-2"})
    completed = await second.until("message.completed", role="ai")
    assert completed["message"]["text"] == "now"
    await first.close()
    await second.close()
