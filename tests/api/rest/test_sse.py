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


def test_the_branch_change_to_the_turns_reply_is_forwarded():
    turn = TurnFilter(handle())
    changed = {"type": "conversation.branch_changed", "conversation_id": 1, "conversation": {}}
    assert turn.accept({**changed, "active_leaf_id": 11})
    assert not turn.accept({**changed, "active_leaf_id": 99})  # another device's switch


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


# --- resuming: positions, the repeated send, the conversation's event stream ---------------


def assert_joined_up(events: list[dict], message_id: int) -> str:
    """The text a client rebuilds from a snapshot and the deltas after it: every delta
    must start exactly where the text ends (no gap, nothing doubled)."""
    text = None
    for event in events:
        data = event["data"]
        if data["type"].startswith("message.") and data.get("message", {}).get("id") == message_id:
            text = data["message"]["text"]
        elif data["type"] == "message.delta" and data["message_id"] == message_id:
            assert text is not None, "a delta before the message's snapshot"
            assert data["offset"] == len(text), (data["offset"], len(text))
            text += data["delta"]
    assert text is not None
    return text


@pytest.mark.django_db(transaction=True)
async def test_a_repeated_send_continues_exactly_where_the_stored_text_ends(
    asgi, llm, token, conversation, settings
):
    # Partial saves far apart, deltas every 30 ms: the stored text lags the live
    # deltas by up to a second when the repeat arrives.
    settings.CONFAB_PARTIAL_SAVE_SECONDS = 1.0
    words = [f"w{i:02d} " for i in range(60)]
    llm.reply_text(words, chunk_delay=0.03)
    body = {"content": "a long one", "client_message_id": "repeat-me"}
    first = asyncio.ensure_future(asgi.post(url(conversation), json=body, headers=bearer(token)))
    for _ in range(200):
        reply = await ConversationMessage.objects.filter(role="ai").afirst()
        if reply is not None and len(reply.text) > 20:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # well past the save: the stored text lags the live one

    repeat = await asgi.post(
        url(conversation), json=body, headers={**bearer(token), "Accept": "text/event-stream"}
    )

    assert repeat.headers["Idempotent-Replayed"] == "true"
    events = parse_sse(repeat.text)
    snapshot = next(e for e in events if e["data"].get("message", {}).get("id") == reply.pk)
    assert snapshot["event"] == "message.created" and len(snapshot["data"]["message"]["text"]) > 0
    assert assert_joined_up(events, reply.pk) == "".join(words)
    assert events[-1]["event"] == "message.completed"
    assert (await first).status_code == 201
    # Each id is the position the client is at after that event.
    assert events[-1]["id"] == str(reply.pk)


async def read_events(stream, count: int) -> list[dict]:
    body = ""
    while len(parse_sse(body)) < count:
        body += (await asyncio.wait_for(anext(stream), 10)).decode()
    return parse_sse(body)


@pytest.mark.django_db(transaction=True)
async def test_the_event_stream_resumes_from_a_position(llm, user, token, conversation):
    from api.rest.sse import open_conversation_stream
    from conversations.resume import Position
    from conversations.turns import start_turn, wait_for_result

    llm.reply_text(["Hello ", "there, ", "friend."])
    result = await wait_for_result(await start_turn(conversation=conversation, content="hi"))
    human, ai = result.human_message, result.ai_message

    # From the start: the conversation snapshot, then both messages.
    stream = await open_conversation_stream(
        user=user, conversation_id=conversation.pk, position=Position()
    )
    events = await read_events(stream, 3)
    await stream.aclose()
    assert [e["event"] for e in events] == [
        "conversation.updated",
        "message.completed",
        "message.completed",
    ]
    assert [e["id"] for e in events] == ["0", str(human.pk), str(ai.pk)]

    # After the human message: only the reply.
    stream = await open_conversation_stream(
        user=user, conversation_id=conversation.pk, position=Position.parse(str(human.pk))
    )
    events = await read_events(stream, 2)
    await stream.aclose()
    assert [e["data"].get("message", {}).get("id") for e in events] == [None, ai.pk]

    # Holding part of the reply (it ended since): its final event gives the whole text.
    stream = await open_conversation_stream(
        user=user, conversation_id=conversation.pk, position=Position.parse(f"{ai.pk}:6")
    )
    events = await read_events(stream, 2)
    await stream.aclose()
    assert events[1]["data"]["message"]["text"] == "Hello there, friend."
    assert events[1]["id"] == str(ai.pk)

    # Live events follow the stored ones, with positions.
    stream = await open_conversation_stream(
        user=user, conversation_id=conversation.pk, position=Position.parse(str(ai.pk))
    )
    await read_events(stream, 1)
    llm.reply_text(["Again."])
    reading = asyncio.ensure_future(read_events(stream, 6))
    second = await wait_for_result(await start_turn(conversation=conversation, content="more"))
    events = await reading
    await stream.aclose()
    # Stored or live (whichever came first; never both for a final message), each
    # message once, with the position after it.
    finals = [e for e in events if e["data"].get("message", {}).get("status") == "complete"]
    assert [e["data"]["message"]["text"] for e in finals] == ["more", "Again."]
    assert finals[-1]["id"] == str(second.ai_message.pk)
    ids = [position_key(e["id"]) for e in events]
    assert ids == sorted(ids)


def position_key(event_id: str) -> tuple[int, float]:
    message_id, _, offset = event_id.partition(":")
    return int(message_id), float(offset) if offset else float("inf")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("header", ["Last-Event-ID", None])
async def test_a_bad_position_is_a_400_and_others_conversations_404(
    asgi, token, other_token, conversation, header
):
    path = f"/api/v1/conversations/{conversation.pk}/events/"
    sse_headers = {**bearer(token), "Accept": "text/event-stream"}
    if header:
        response = await asgi.get(path, headers={**sse_headers, header: "12:x"})
    else:
        response = await asgi.get(path, params={"after_id": "-3"}, headers=sse_headers)
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert list(response.json()["fields"]) == [header or "after_id"]

    response = await asgi.get(path, headers={**bearer(other_token), "Accept": "text/event-stream"})
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
