"""Branches on the live chat websocket: the `edit` and `branch` frames, the events a
second device sees, and `resume` following the active branch."""

from __future__ import annotations

import json

import pytest

from conversations.frames import FrameError, parse_frame
from conversations.models import ConversationMessage
from tests.support.sockets import Socket, ws_path
from tests.support.turns import turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "edit", "content": "x"},
        {"type": "edit", "message_id": "3", "content": "x"},
        {"type": "branch", "message_id": 0},
        {"type": "branch", "message_id": True},
    ],
)
def test_branch_frames_need_a_message_id(frame):
    with pytest.raises(FrameError) as error:
        parse_frame(json.dumps(frame), max_bytes=10_000)
    assert error.value.code == "INVALID_FRAME"


async def test_edit_and_branch_frames_reach_every_device(llm, conversation, token):
    llm.reply_text(["first"])
    llm.reply_text(["edited reply"])
    ws = Socket(ws_path(conversation.pk), token)
    other = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await other.connect()
    await ws.send({"type": "message", "content": "question"})
    human = (await ws.until("message.created", role="human"))["message"]
    first = (await ws.until("message.completed", role="ai"))["message"]

    await ws.send({"type": "edit", "message_id": human["id"], "content": "better question"})
    created = await other.until("message.created", role="human", text="better question")
    assert created["message"]["text"] == "better question"
    assert created["message"]["siblings"] == {
        "ids": [human["id"], created["message"]["id"]],
        "index": 1,
    }
    switched = await other.until("conversation.branch_changed")
    reply = (await other.until("message.completed", role="ai"))["message"]
    assert switched["active_leaf_id"] == reply["id"]
    assert reply["text"] == "edited reply" and reply["parent_id"] == created["message"]["id"]
    await ws.until("message.completed", id=reply["id"])

    await ws.send({"type": "branch", "message_id": human["id"]})
    back = await other.until("conversation.branch_changed")
    assert back["active_leaf_id"] == first["id"]
    await ws.until("conversation.branch_changed")  # the device that switched hears it too
    # Resuming from the start replays the active branch only.
    await ws.send({"type": "resume", "after_id": 0})
    replay = [await ws.until("message.completed") for _ in range(2)]
    assert [f["message"]["text"] for f in replay] == ["question", "first"]
    assert (await ws.until("resumed"))["has_more"] is False

    # A bad target is an error frame; the socket stays open.
    await ws.send({"type": "branch", "message_id": 10**9})
    assert (await ws.until("error"))["code"] == "NOT_FOUND"
    await ws.send({"type": "edit", "message_id": first["id"], "content": "x"})
    assert (await ws.until("error"))["code"] == "VALIDATION_ERROR"
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 4
    await ws.close()
    await other.close()
