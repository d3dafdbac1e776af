"""Scale-out for real: two Confab server processes on one PostgreSQL and one Redis.

Each server is a real uvicorn process (tests/support/servers.py) on its own port. The tests show
that a client never needs to be on the process that runs its turn:

- a websocket client and a GraphQL subscription on process A receive, in order and
  complete, the events of a turn started over REST on process B;
- the one-active-turn rule holds across both processes;
- a turn whose process is killed (SIGKILL) mid-stream keeps its human message, and its
  AI message ends `failed`/`interrupted` once recovery runs: the other process's
  background sweep, or `manage.py recover_turns`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.core.management import call_command

from conversations.models import Conversation, ConversationMessage, MessageStatus
from tests.support.requirements import needs_redis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_redis("scale-out (events between processes)"),
]

DELTAS = [f"chunk{i:02d} " for i in range(24)]
SLOW_WORDS = [f"w{i} " for i in range(200)]
EVENTS_QUERY = """
subscription Events($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename
    ... on MessageCreated { message { id role status text } }
    ... on MessageDelta { messageId index offset delta }
    ... on MessageCompleted { message { id role status text } }
    ... on MessageFailed { message { id status text } error { code } }
  }
}
"""


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def open_chat_socket(server: Any, conversation_id: int, token: str) -> Any:
    """A chat websocket on `server`, past its `ready` frame."""
    socket = await websockets.connect(
        f"{server.ws_url}/ws/conversations/{conversation_id}/", additional_headers=auth(token)
    )
    ready = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert ready["type"] == "ready", ready
    return socket


async def open_subscription(server: Any, conversation_id: int, token: str) -> Any:
    """A graphql-transport-ws subscription to conversationEvents on `server`, listening."""
    socket = await websockets.connect(
        f"{server.ws_url}/graphql/", subprotocols=["graphql-transport-ws"]
    )
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert ack["type"] == "connection_ack", ack
    await socket.send(
        json.dumps(
            {
                "id": "events",
                "type": "subscribe",
                "payload": {"query": EVENTS_QUERY, "variables": {"id": str(conversation_id)}},
            }
        )
    )
    # The first event is the ConversationUpdated snapshot, sent once the server
    # listens to the conversation's group: a turn started after it is seen whole.
    first = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert first["type"] == "next", first
    assert first["payload"]["data"]["conversationEvents"]["__typename"] == "ConversationUpdated"
    return socket


async def chat_events_until_done(socket: Any, timeout: float = 20) -> list[dict[str, Any]]:
    """Websocket frames until the AI reply's final event."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), deadline - time.monotonic()))
        events.append(frame)
        final = frame["type"] in ("message.completed", "message.failed")
        if final and frame["message"]["role"] == "ai":
            return events


async def graphql_events_until_done(socket: Any, timeout: float = 20) -> list[dict[str, Any]]:
    """Subscription events (the `conversationEvents` objects) until the AI reply's final one."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), deadline - time.monotonic()))
        assert frame["type"] == "next", frame
        event = frame["payload"]["data"]["conversationEvents"]
        events.append(event)
        final = event["__typename"] in ("MessageCompleted", "MessageFailed")
        if final and event["message"]["role"] == "AI":
            return events


def check_delta_stream(deltas: list[tuple[int, int, str]], final_text: str) -> None:
    """(index, offset, delta) in arrival order: contiguous from 0, nothing lost or doubled."""
    assert [index for index, _, _ in deltas] == list(range(len(deltas)))
    offset = 0
    for _, delta_offset, delta in deltas:
        assert delta_offset == offset
        offset += len(delta)
    assert "".join(delta for _, _, delta in deltas) == final_text


async def test_turn_on_b_reaches_websocket_and_subscription_on_a(
    live_server_factory, llm, conversation, token
):
    a = live_server_factory()
    b = live_server_factory()
    llm.reply_text(DELTAS, chunk_delay=0.02)
    chat = await open_chat_socket(a, conversation.pk, token)
    subscription = await open_subscription(a, conversation.pk, token)
    try:
        chat_task = asyncio.ensure_future(chat_events_until_done(chat))
        graphql_task = asyncio.ensure_future(graphql_events_until_done(subscription))
        async with httpx.AsyncClient(base_url=b.url, headers=auth(token), timeout=30) as client:
            response = await client.post(
                f"/api/v1/conversations/{conversation.pk}/messages/",
                json={"content": "hello from B", "client_message_id": "scale-1"},
            )
        assert response.status_code == 201, response.text
        result = response.json()
        chat_events, graphql_events = await asyncio.gather(chat_task, graphql_task)
    finally:
        await chat.close()
        await subscription.close()

    human, ai = result["human_message"], result["ai_message"]
    assert ai["status"] == "complete" and ai["text"] == "".join(DELTAS)

    # The websocket on A: human created, AI created, every delta in order, AI completed.
    types = [event["type"] for event in chat_events if event["type"].startswith("message.")]
    assert types[:2] == ["message.created", "message.created"]
    assert types[-1] == "message.completed"
    assert set(types[2:-1]) == {"message.delta"}
    assert chat_events[0]["message"]["id"] == human["id"]
    assert chat_events[1]["message"]["id"] == ai["id"]
    deltas = [
        (event["index"], event["offset"], event["delta"])
        for event in chat_events
        if event["type"] == "message.delta"
    ]
    assert all(e["message_id"] == ai["id"] for e in chat_events if e["type"] == "message.delta")
    check_delta_stream(deltas, ai["text"])
    assert chat_events[-1]["message"]["text"] == ai["text"]

    # The subscription on A: the same events, in the same order.
    names = [event["__typename"] for event in graphql_events]
    message_names = [name for name in names if name.startswith("Message")]
    assert message_names[:2] == ["MessageCreated", "MessageCreated"]
    assert message_names[-1] == "MessageCompleted"
    assert set(message_names[2:-1]) == {"MessageDelta"}
    graphql_deltas = [
        (event["index"], event["offset"], event["delta"])
        for event in graphql_events
        if event["__typename"] == "MessageDelta"
    ]
    check_delta_stream(graphql_deltas, ai["text"])
    assert graphql_deltas == deltas
    assert graphql_events[-1]["message"]["text"] == ai["text"]


async def test_one_active_turn_across_processes(live_server_factory, llm, conversation, token):
    a = live_server_factory()
    b = live_server_factory()
    # A slow reply keeps the winner's turn running while the others arrive.
    llm.reply_text(DELTAS, chunk_delay=0.05)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    async with (
        httpx.AsyncClient(base_url=a.url, headers=auth(token), timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.url, headers=auth(token), timeout=30) as on_b,
    ):
        responses = await asyncio.gather(
            *(
                (on_a if i % 2 else on_b).post(url, json={"content": f"attempt {i}"})
                for i in range(12)
            )
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(201) == 1, [(r.status_code, r.text[:200]) for r in responses]
    assert statuses.count(409) == 11
    assert all(r.json()["code"] == "TURN_IN_PROGRESS" for r in responses if r.status_code == 409)
    stored = await sync_to_async(list)(
        ConversationMessage.objects.filter(conversation=conversation).values_list("role", "status")
    )
    assert stored == [("human", "complete"), ("ai", "complete")]


async def start_turn_then_kill(
    live_server_factory, llm, conversation, token, extra_env: dict[str, str]
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Start a slow turn on B, watch it stream on A, SIGKILL B mid-stream.

    Returns (a, the websocket on A, the frames seen so far)."""
    a = live_server_factory(extra_env=extra_env)
    b = live_server_factory(extra_env=extra_env)
    llm.reply_text(SLOW_WORDS, chunk_delay=0.05)  # ~10 s
    chat = await open_chat_socket(a, conversation.pk, token)
    client = httpx.AsyncClient(base_url=b.url, headers=auth(token), timeout=30)
    post = asyncio.ensure_future(
        client.post(
            f"/api/v1/conversations/{conversation.pk}/messages/",
            json={"content": "a turn that dies"},
        )
    )
    frames: list[dict[str, Any]] = []
    try:
        # Wait for deltas relayed to A (for longer than a partial-save interval, 0.2 s in
        # the test settings), then kill the turn's process.
        while sum(1 for f in frames if f["type"] == "message.delta") < 10:
            frames.append(json.loads(await asyncio.wait_for(chat.recv(), 10)))
        b.kill()
        with pytest.raises(httpx.HTTPError):
            await post
    finally:
        await client.aclose()
    ai = await ConversationMessage.objects.filter(conversation=conversation, role="ai").aget()
    assert ai.status == MessageStatus.STREAMING  # nobody has ended it yet
    return a, chat, frames


async def check_interrupted(conversation: Conversation) -> ConversationMessage:
    rows = [row async for row in ConversationMessage.objects.filter(conversation=conversation)]
    human, ai = rows
    assert (human.role, human.status, human.text) == ("human", "complete", "a turn that dies")
    assert ai.role == "ai" and ai.status == MessageStatus.FAILED
    assert ai.error["code"] == "interrupted"
    locked = await Conversation.objects.aget(pk=conversation.pk)
    assert locked.active_turn_id is None
    return ai


async def test_killed_turn_is_recovered_by_the_other_process(
    live_server_factory, llm, conversation, token
):
    # A turn counts as dead after 2 s without heartbeat; A sweeps every second.
    a, chat, frames = await start_turn_then_kill(
        live_server_factory, llm, conversation, token, {"CONFAB_TURN_STALE_SECONDS": "2"}
    )
    try:
        # A's background sweep ends the reply and publishes message.failed to A's client.
        deadline = time.monotonic() + 15
        while frames[-1]["type"] != "message.failed":
            frames.append(
                json.loads(await asyncio.wait_for(chat.recv(), deadline - time.monotonic()))
            )
    finally:
        await chat.close()
    assert frames[-1]["error"]["code"] == "interrupted"
    ai = await check_interrupted(conversation)
    # The text streamed before the crash was saved (partial saves, bounded by time) and kept.
    assert ai.text and "".join(SLOW_WORDS).startswith(ai.text)
    # The conversation is usable again: a new turn runs on the surviving process.
    llm.reply_text(["fine ", "again"])
    async with httpx.AsyncClient(base_url=a.url, headers=auth(token), timeout=30) as client:
        response = await client.post(
            f"/api/v1/conversations/{conversation.pk}/messages/", json={"content": "again?"}
        )
    assert response.status_code == 201, response.text
    assert response.json()["ai_message"]["text"] == "fine again"


async def test_killed_turn_is_recovered_by_the_command(
    live_server_factory, llm, conversation, token
):
    # With the default 30 s staleness no sweep ends it during the test: the command does.
    _, chat, _ = await start_turn_then_kill(live_server_factory, llm, conversation, token, {})
    await chat.close()
    await sync_to_async(call_command)("recover_turns", stale_after=0)
    await check_interrupted(conversation)
