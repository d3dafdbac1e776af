"""The SSE stream: which events belong to a turn, framing, keepalives, early ends."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from api.rest.sse import TurnFilter, format_event
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.turns import TurnHandle
from conversations.turns.engine import running_turn_count
from tests.support.rest import bearer, parse_sse

TURN = uuid.uuid4()


def handle() -> TurnHandle:
    human = ConversationMessage(id=10, conversation_id=1, turn_id=TURN)
    ai = ConversationMessage(id=11, conversation_id=1, turn_id=TURN)
    return TurnHandle(turn_id=TURN, human_message=human, ai_message=ai, existing=False, task=None)


def message(kind: str, message_id: int, role: str = "ai", turn=TURN) -> dict:
    return {
        "type": kind,
        "conversation_id": 1,
        "message": {"id": message_id, "role": role, "turn_id": str(turn) if turn else None},
    }


def updated(active) -> dict:
    return {
        "type": "conversation.updated",
        "conversation_id": 1,
        "conversation": {"active_turn_id": str(active) if active else None},
    }


def delta(message_id: int) -> dict:
    return {"type": "message.delta", "conversation_id": 1, "message_id": message_id, "delta": "x"}


def test_filter_forwards_the_turns_messages_and_ends_after_the_final_reply():
    turn = TurnFilter(handle())
    assert turn.accept(message("message.created", 10, "human"))
    assert turn.accept(message("message.created", 11))
    assert not turn.accept(updated(TURN))  # lock taken: not forwarded, not over
    assert turn.accept(delta(11))
    assert turn.accept(message("message.completed", 11))  # a tool round's reply
    assert turn.accept(message("message.created", 12, "tool"))
    assert turn.accept(message("message.created", 13))
    assert turn.accept(delta(13))
    assert not turn.over
    assert turn.accept(message("message.completed", 13))
    assert not turn.accept(updated(None))
    assert turn.over


def test_filter_ignores_other_turns_and_a_late_lock_release_of_the_previous_turn():
    turn = TurnFilter(handle())
    other = uuid.uuid4()
    # The previous turn's last events arrive after this turn took the lock.
    assert not turn.accept(message("message.completed", 9, turn=other))
    assert not turn.accept(updated(None))
    assert not turn.over
    assert not turn.accept(delta(9))
    assert turn.accept(delta(11))


@pytest.mark.parametrize("kind", ["conversation.cleared", "conversation.deleted"])
def test_filter_ends_when_the_conversation_is_cleared_or_deleted(kind):
    turn = TurnFilter(handle())
    assert turn.accept({"type": kind, "conversation_id": 1, "conversation": {}})
    assert turn.over


def test_regenerate_deletions_are_forwarded():
    turn = TurnFilter(handle())
    assert turn.accept({"type": "message.deleted", "conversation_id": 1, "message_ids": [3]})


def test_format_event_is_one_sse_frame():
    frame = format_event({"type": "message.delta", "delta": "line\nbreak é"}, 7).decode()
    assert frame.startswith("event: message.delta\nid: 7\ndata: ")
    assert frame.endswith("\n\n") and frame.count("\n") == 4
    assert json.loads(frame.split("data: ", 1)[1]) == {
        "type": "message.delta",
        "delta": "line\nbreak é",
    }


# --- through the application ---------------------------------------------------------


def url(conversation: Conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/"


@pytest.mark.django_db(transaction=True)
async def test_idle_stream_sends_keepalive_comments(asgi, llm, token, conversation, settings):
    settings.CONFAB_SSE_KEEPALIVE_SECONDS = 0.5
    llm.reply_text(["slow", " start"], chunk_delay=1.6)

    response = await asgi.post(
        url(conversation),
        json={"content": "hi"},
        headers={**bearer(token), "Accept": "text/event-stream"},
    )

    assert ": keepalive\n\n" in response.text
    assert parse_sse(response.text)[-1]["data"]["message"]["text"] == "slow start"


@pytest.mark.django_db(transaction=True)
async def test_clearing_the_conversation_ends_its_stream(asgi, llm, token, conversation):
    llm.reply_text(["a", "b", "c", "d", "e"], chunk_delay=0.3)
    headers = {**bearer(token), "Accept": "text/event-stream"}
    streaming = asyncio.ensure_future(
        asgi.post(url(conversation), json={"content": "hi"}, headers=headers)
    )
    for _ in range(100):
        if (await Conversation.objects.aget(pk=conversation.pk)).active_turn_id:
            break
        await asyncio.sleep(0.02)

    clear = await asgi.post(
        f"/api/v1/conversations/{conversation.pk}/clear/", headers=bearer(token)
    )
    assert clear.status_code == 200

    events = parse_sse((await asyncio.wait_for(streaming, 10)).text)
    assert events[-1]["event"] == "conversation.cleared"
    assert not await ConversationMessage.objects.aexists()


@pytest.mark.django_db(transaction=True)
async def test_client_leaving_mid_stream_does_not_stop_the_turn(llm, token, conversation):
    """A raw ASGI client that disconnects after the first delta."""
    from backend.asgi import application

    llm.reply_text(["one ", "two ", "three"], chunk_delay=0.3)
    body = json.dumps({"content": "hi"}).encode()
    path = url(conversation)
    gone = asyncio.Event()
    received: list[bytes] = []
    request_sent = False

    async def receive() -> dict:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            received.append(message.get("body", b""))
            if b"message.delta" in message.get("body", b""):
                gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept", b"text/event-stream"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    await asyncio.wait_for(application(scope, receive, send), 10)

    text = b"".join(received).decode()
    assert "message.delta" in text and "message.completed" not in text
    for _ in range(200):
        reply = await ConversationMessage.objects.filter(role="ai").afirst()
        if reply and reply.status != MessageStatus.STREAMING:
            break
        await asyncio.sleep(0.05)
    assert reply.status == MessageStatus.COMPLETE and reply.text == "one two three"
    for _ in range(100):
        if not running_turn_count():
            break
        await asyncio.sleep(0.05)
