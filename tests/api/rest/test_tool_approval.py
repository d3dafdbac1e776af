"""Tool approval over REST (httpx on the ASGI application): the paused turn's result, its
pending calls, approve / deny, 409 on a second decision, 404 for another user's call,
and the turn's event stream ending at the pause."""

from __future__ import annotations

import pytest

from conversations.models import Conversation
from conversations.services import create_conversation
from tests.support.approvals import guarded_agent, paused, turn_ended
from tests.support.fakeopenai import ToolCall
from tests.support.rest import assert_error, bearer, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(user) -> Conversation:
    return create_conversation(user=user, agent=guarded_agent(), title="Approval")


def url(conversation: Conversation, tail: str) -> str:
    return f"/api/v1/conversations/{conversation.pk}/{tail}"


async def test_approve_over_rest(asgi, llm, token, conversation):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="call_a")])
    response = await asgi.post(
        url(conversation, "messages/"), json={"content": "6*7?"}, headers=bearer(token)
    )
    assert response.status_code == 201, response.content
    ai = response.json()["ai_message"]
    assert ai["status"] == "awaiting_approval"
    assert ai["content"]["_value"]["tool_calls"][0]["id"] == "call_a"

    pending = (await asgi.get(url(conversation, "tool-calls/"), headers=bearer(token))).json()
    assert [(c["call_id"], c["name"], c["arguments"], c["decision"]) for c in pending] == [
        ("call_a", "calculator", {"expression": "6*7"}, None)
    ]
    assert pending[0]["message_id"] == ai["id"]

    llm.reply_text(["42."])
    approved = await asgi.post(
        url(conversation, "tool-calls/call_a/approve/"), headers=bearer(token)
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["decision"] == "approved" and approved.json()["decided_by"] == "user"
    final = await turn_ended(conversation)
    assert final.text == "42." and final.status == "complete"
    assert (await asgi.get(url(conversation, "tool-calls/"), headers=bearer(token))).json() == []

    for action in ("approve", "deny"):
        again = await asgi.post(
            url(conversation, f"tool-calls/call_a/{action}/"), headers=bearer(token)
        )
        assert_error(again, 409, "TOOL_CALL_ALREADY_DECIDED")


async def test_deny_over_rest_with_a_reason(asgi, llm, token, conversation):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "1/0"}, id="call_d")])
    await asgi.post(url(conversation, "messages/"), json={"content": "1/0?"}, headers=bearer(token))
    llm.reply_text(["Fine."])
    bad = await asgi.post(
        url(conversation, "tool-calls/call_d/deny/"), json={"reason": 5}, headers=bearer(token)
    )
    assert_error(bad, 400, "VALIDATION_ERROR")
    denied = await asgi.post(
        url(conversation, "tool-calls/call_d/deny/"),
        json={"reason": "not now"},
        headers=bearer(token),
    )
    assert denied.status_code == 200, denied.content
    assert denied.json()["decision"] == "denied" and denied.json()["reason"] == "not now"
    await turn_ended(conversation)
    assert llm.requests[1].messages[-1]["content"] == (
        "The user denied this tool call. The user said: not now"
    )
    after = await asgi.post(url(conversation, "tool-calls/call_d/approve/"), headers=bearer(token))
    assert_error(after, 409, "TOOL_CALL_ALREADY_DECIDED")


async def test_another_users_call_is_not_found(asgi, llm, token, other_token, conversation):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "2+2"}, id="call_x")])
    await asgi.post(url(conversation, "messages/"), json={"content": "2+2?"}, headers=bearer(token))
    await paused(conversation)
    for tail in ("tool-calls/call_x/approve/", "tool-calls/call_x/deny/", "tool-calls/"):
        send = asgi.get if tail == "tool-calls/" else asgi.post
        assert_error(
            await send(url(conversation, tail), headers=bearer(other_token)), 404, "NOT_FOUND"
        )
    assert_error(
        await asgi.post(url(conversation, "tool-calls/nope/approve/"), headers=bearer(token)),
        404,
        "NOT_FOUND",
    )
    # Still waiting for its owner.
    pending = (await asgi.get(url(conversation, "tool-calls/"), headers=bearer(token))).json()
    assert [c["call_id"] for c in pending] == ["call_x"]
    cancelled = await asgi.post(url(conversation, "cancel/"), headers=bearer(token))
    assert cancelled.status_code == 202
    assert (await turn_ended(conversation)).status == "cancelled"


async def test_a_new_message_while_waiting_is_turn_in_progress(asgi, llm, token, conversation):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "2+2"}, id="call_b")])
    await asgi.post(url(conversation, "messages/"), json={"content": "2+2?"}, headers=bearer(token))
    busy = await asgi.post(
        url(conversation, "messages/"), json={"content": "hello?"}, headers=bearer(token)
    )
    assert_error(busy, 409, "TURN_IN_PROGRESS")
    # With on_busy "enqueue" it waits its turn and is answered after the resumed one.
    queued = await asgi.post(
        url(conversation, "messages/"),
        json={"content": "and then?", "on_busy": "enqueue"},
        headers=bearer(token),
    )
    assert queued.status_code == 202, queued.content
    llm.reply_text(["Four."])
    llm.reply_text(["Then nothing."])
    await asgi.post(url(conversation, "tool-calls/call_b/approve/"), headers=bearer(token))

    async def answered() -> bool:
        texts = [m.text async for m in conversation.messages.order_by("id")]
        return texts[-1] == "Then nothing."

    from tests.support.turns import eventually

    await eventually(answered, timeout=10)
    assert [m.text async for m in conversation.messages.filter(role="ai").order_by("id")][1:] == [
        "Four.",
        "Then nothing.",
    ]


async def test_the_turns_event_stream_ends_at_the_pause(asgi, llm, token, conversation):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="call_s")])
    response = await asgi.post(
        url(conversation, "messages/"),
        json={"content": "6*7?"},
        headers={**bearer(token), "Accept": "text/event-stream"},
    )
    events = parse_sse(response.text)
    assert events[-1]["event"] == "tool.approval_requested"
    assert events[-1]["data"]["calls"][0]["call_id"] == "call_s"
    completed = [
        e["data"]["message"]["status"] for e in events if e["event"] == "message.completed"
    ]
    assert completed == ["awaiting_approval"]
    await asgi.post(url(conversation, "cancel/"), headers=bearer(token))
