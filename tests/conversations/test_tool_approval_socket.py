"""Tool approval on the chat websocket: the pause reaches the socket, and a `tool.approve`
or `tool.deny` frame from another socket (another device), after the first one left,
resumes the turn; bad frames and second decisions are error frames."""

from __future__ import annotations

import pytest

from conversations.services import create_conversation
from tests.support.approvals import guarded_agent, turn_ended
from tests.support.fakeopenai import ToolCall
from tests.support.sockets import Socket, ws_path
from tests.support.turns import turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(user):
    return create_conversation(user=user, agent=guarded_agent(), title="Approval")


async def test_pause_on_one_socket_decide_on_another(llm, conversation, token):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="call_w")])
    phone = Socket(ws_path(conversation.pk), token)
    await phone.connect()
    await phone.send({"type": "message", "content": "6*7?"})
    requested = await phone.until("tool.approval_requested")
    assert requested["calls"][0]["name"] == "calculator"
    assert requested["calls"][0]["arguments"] == {"expression": "6*7"}
    await phone.close()  # the device that asked is gone

    laptop = Socket(ws_path(conversation.pk), token)
    ready = await laptop.connect()
    assert ready["active_turn"] == requested["turn_id"]  # still the paused turn's
    llm.reply_text(["42."])
    await laptop.send({"type": "tool.approve", "call_id": "call_w"})
    decided = await laptop.until("tool.approval_decided")
    assert decided["call"]["decision"] == "approved"
    await laptop.until("message.completed", timeout=10, text="42.")
    await turn_ended(conversation)

    await laptop.send({"type": "tool.deny", "call_id": "call_w"})
    error = await laptop.until("error")
    assert error["code"] == "TOOL_CALL_ALREADY_DECIDED"
    await laptop.send({"type": "tool.approve"})
    assert (await laptop.until("error"))["code"] == "INVALID_FRAME"
    await laptop.send({"type": "tool.approve", "call_id": "unknown"})
    assert (await laptop.until("error"))["code"] == "NOT_FOUND"
    await laptop.close()


async def test_deny_frame_with_a_reason(llm, conversation, token):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "1+1"}, id="call_r")])
    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    await socket.send({"type": "message", "content": "1+1?"})
    await socket.until("tool.approval_requested")
    llm.reply_text(["OK."])
    await socket.send({"type": "tool.deny", "call_id": "call_r", "reason": "no math"})
    decided = await socket.until("tool.approval_decided")
    assert decided["call"]["decision"] == "denied" and decided["call"]["reason"] == "no math"
    await turn_ended(conversation)
    assert llm.requests[1].messages[-1]["content"].endswith("The user said: no math")
    await socket.close()
