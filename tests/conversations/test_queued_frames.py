"""The chat websocket's `message` frame takes `on_busy` (passed through to the turn
engine): a second message while a turn runs is queued and answered after it."""

from __future__ import annotations

import pytest

from conversations.models import ConversationMessage
from tests.support.sockets import Socket, ws_path
from tests.support.turns import eventually, turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_message_frame_may_queue_behind_the_running_turn(llm, conversation, token):
    llm.reply_text(["slow ", "reply"], chunk_delay=0.2)
    llm.reply_text(["second reply"])
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await ws.send({"type": "message", "content": "one"})
    await ws.until("message.created", role="ai")
    await ws.send({"type": "message", "content": "two", "on_busy": "enqueue"})
    queued = await ws.until("message.created", role="human")
    assert (queued["message"]["text"], queued["message"]["status"]) == ("two", "queued")
    first = await ws.until("message.completed", role="ai")
    assert first["message"]["text"] == "slow reply"
    begun = await ws.until("message.completed", role="human")
    assert begun["message"]["id"] == queued["message"]["id"]
    second = await ws.until("message.completed", role="ai")
    assert second["message"]["text"] == "second reply"
    await ws.close()

    async def answered() -> bool:
        rows = [r async for r in ConversationMessage.objects.order_by("id")]
        return [(r.role, r.text, r.status) for r in rows] == [
            ("human", "one", "complete"),
            ("ai", "slow reply", "complete"),
            ("human", "two", "complete"),
            ("ai", "second reply", "complete"),
        ]

    await eventually(answered, what="both turns stored")
