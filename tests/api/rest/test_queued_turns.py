"""Double-texting: `on_busy: "enqueue"` stores a message sent while a turn runs and answers
it after that turn, in order; `reject` (the default) is 409 TURN_IN_PROGRESS with
Retry-After. The queue lives in the database (`queued` messages): a process that dies
between two turns loses nothing, the periodic sweep begins the next turn."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.turns import start_waiting_queues
from tests.support.live_clients import wait_idle
from tests.support.rest import bearer

pytestmark = pytest.mark.django_db(transaction=True)


def url(conversation: Conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/"


async def wait_running(conversation: Conversation) -> None:
    for _ in range(250):
        if (await Conversation.objects.aget(pk=conversation.pk)).active_turn_id:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no turn started")


async def wait_all_answered(conversation: Conversation, replies: int) -> list[ConversationMessage]:
    for _ in range(500):
        rows = [r async for r in ConversationMessage.objects.filter(conversation=conversation)]
        ais = [r for r in rows if r.role == "ai" and r.status == MessageStatus.COMPLETE]
        if len(ais) == replies and not any(r.status == MessageStatus.QUEUED for r in rows):
            await wait_idle(conversation.pk)
            return sorted(rows, key=lambda r: r.id)
        await asyncio.sleep(0.05)
    raise AssertionError(f"not all answered: {[(r.role, r.status) for r in rows]}")


async def test_an_offline_app_flushing_three_messages_gets_three_ordered_turns(
    asgi, llm, token, conversation
):
    llm.reply_text(["one ", "two ", "three"], chunk_delay=0.2)
    llm.reply_text(["second answer"], chunk_delay=0.05)
    llm.reply_text(["third answer"], chunk_delay=0.05)
    body = {"on_busy": "enqueue"}
    first = asyncio.ensure_future(
        asgi.post(url(conversation), json={"content": "m1", **body}, headers=bearer(token))
    )
    await wait_running(conversation)
    second = await asgi.post(
        url(conversation), json={"content": "m2", **body}, headers=bearer(token)
    )
    third = await asgi.post(
        url(conversation), json={"content": "m3", **body}, headers=bearer(token)
    )

    assert second.status_code == third.status_code == 202
    for response, text in ((second, "m2"), (third, "m3")):
        assert response.json()["human_message"]["status"] == "queued"
        assert response.json()["human_message"]["text"] == text
        assert response.json()["ai_message"] is None
    assert (await first).status_code == 201

    rows = await wait_all_answered(conversation, replies=3)
    humans = [r for r in rows if r.role == "human"]
    ais = [r for r in rows if r.role == "ai"]
    assert [h.text for h in humans] == ["m1", "m2", "m3"]
    assert [a.text for a in ais] == ["one two three", "second answer", "third answer"]
    # Each reply belongs to its message's turn, in order.
    assert [a.turn_id for a in ais] == [h.turn_id for h in humans]
    assert all(h.status == MessageStatus.COMPLETE for h in humans)
    # The model answering m3 saw the earlier replies, and m3 last.
    third_request = [m["content"] for m in llm.requests[2].messages][1:]
    assert third_request == ["m1", "one two three", "m2", "second answer", "m3"]
    second_request = [m["content"] for m in llm.requests[1].messages][1:]
    assert second_request == ["m1", "one two three", "m2"]


async def test_reject_is_the_default_and_says_when_to_retry(asgi, llm, token, conversation):
    llm.reply_text(["slow ", "reply"], chunk_delay=0.3)
    first = asyncio.ensure_future(
        asgi.post(url(conversation), json={"content": "m1"}, headers=bearer(token))
    )
    await wait_running(conversation)

    busy = await asgi.post(url(conversation), json={"content": "m2"}, headers=bearer(token))
    assert busy.status_code == 409 and busy.json()["code"] == "TURN_IN_PROGRESS"
    assert int(busy.headers["Retry-After"]) >= 1
    bad = await asgi.post(
        url(conversation), json={"content": "m2", "on_busy": "later"}, headers=bearer(token)
    )
    assert bad.status_code == 400 and list(bad.json()["fields"]) == ["on_busy"]
    assert (await first).status_code == 201
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 2


async def test_an_agent_may_enqueue_by_default(asgi, llm, token, conversation, plain_agent):
    plain_agent.on_busy = "enqueue"
    await plain_agent.asave()
    llm.reply_text(["slow ", "reply"], chunk_delay=0.3)
    llm.reply_text(["next"])
    first = asyncio.ensure_future(
        asgi.post(url(conversation), json={"content": "m1"}, headers=bearer(token))
    )
    await wait_running(conversation)

    queued = await asgi.post(url(conversation), json={"content": "m2"}, headers=bearer(token))
    assert queued.status_code == 202
    # The request can still say reject.
    refused = await asgi.post(
        url(conversation), json={"content": "m3", "on_busy": "reject"}, headers=bearer(token)
    )
    assert refused.status_code == 409
    await first
    rows = await wait_all_answered(conversation, replies=2)
    assert [r.text for r in rows] == ["m1", "slow reply", "m2", "next"]


async def test_a_queue_left_by_a_dead_process_is_picked_up_by_the_sweep(llm, conversation):
    """A turn holds the lock; two messages queue behind it; the process dies (the lock is
    released by recovery, no engine ends the turn): the sweep answers both, in order."""
    from langchain_core.messages import HumanMessage

    llm.reply_text(["a2"])
    llm.reply_text(["a3"])

    def queue_behind_a_dead_turn() -> None:
        running = services.begin_turn(conversation=conversation, content=HumanMessage("m1"))
        for text in ("m2", "m3"):
            queued = services.begin_turn(
                conversation=conversation, content=HumanMessage(text), enqueue=True
            )
            assert queued.queued and queued.human_message.status == MessageStatus.QUEUED
        # What recovery does for a dead worker's turn.
        long_ago = timezone.now() - timedelta(hours=1)
        Conversation.objects.filter(pk=conversation.pk).update(active_turn_heartbeat_at=long_ago)
        assert services.recover_interrupted_turns(stale_after=60) == 1
        assert services.conversations_with_waiting_queue() == [conversation.pk]
        assert running.ai_message is not None

    await sync_to_async(queue_behind_a_dead_turn)()

    assert await start_waiting_queues() == 1
    rows = await wait_all_answered(conversation, replies=2)
    assert [(r.role, r.text, r.status) for r in rows][-4:] == [
        ("human", "m2", "complete"),
        ("human", "m3", "complete"),
        ("ai", "a2", "complete"),
        ("ai", "a3", "complete"),
    ]
    assert await start_waiting_queues() == 0
