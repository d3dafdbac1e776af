"""Tool approval across real server processes: a turn pauses on process B, B is killed
(SIGKILL: nothing of the turn survives in memory), and a `tool.approve` frame on process
A's chat websocket resumes it from the database; the reply streams on A."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from conversations.models import ConversationMessage
from conversations.services import create_conversation
from tests.scale.test_two_processes import auth, open_chat_socket
from tests.support.approvals import guarded_agent
from tests.support.fakeopenai import ToolCall
from tests.support.requirements import needs_redis
from tests.support.turns import in_other_connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_redis("scale-out (events between processes)"),
]


async def test_a_turn_paused_on_a_killed_process_resumes_on_another(
    live_server_factory, llm, user, token
):
    conversation = await in_other_connection(
        lambda: create_conversation(user=user, agent=guarded_agent(), title="Two processes")
    )
    a = live_server_factory()
    b = live_server_factory()
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="call_p")])
    async with httpx.AsyncClient(base_url=b.url, headers=auth(token), timeout=30) as client:
        response = await client.post(
            f"/api/v1/conversations/{conversation.pk}/messages/", json={"content": "6*7?"}
        )
    assert response.status_code == 201, response.text
    assert response.json()["ai_message"]["status"] == "awaiting_approval"
    b.kill()

    llm.reply_text(["It is ", "42."])
    chat = await open_chat_socket(a, conversation.pk, token)
    try:
        await chat.send(json.dumps({"type": "tool.approve", "call_id": "call_p"}))
        frames = []
        deadline = time.monotonic() + 20
        while True:
            frame = json.loads(await asyncio.wait_for(chat.recv(), deadline - time.monotonic()))
            frames.append(frame)
            done = frame["type"] == "message.completed" and frame["message"]["text"] == "It is 42."
            if done:
                break
    finally:
        await chat.close()
    decided = [f["call"]["decision"] for f in frames if f["type"] == "tool.approval_decided"]
    assert decided == ["approved"]
    rows = [
        (row.role, row.status, row.text)
        async for row in ConversationMessage.objects.filter(conversation=conversation).order_by(
            "id"
        )
    ]
    assert rows == [
        ("human", "complete", "6*7?"),
        ("ai", "complete", ""),
        ("tool", "complete", "42"),
        ("ai", "complete", "It is 42."),
    ]
    assert llm.requests[1].messages[-1] == {
        "role": "tool",
        "tool_call_id": "call_p",
        "content": "42",
    }
