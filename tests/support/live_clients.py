"""Clients and checks shared by the reliability tests.

Everything here talks to real servers over loopback: httpx for HTTP, the
`websockets` library for the chat websocket and graphql-transport-ws. Stored
rows are read through the ORM (the test database the live servers use).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from asgiref.sync import sync_to_async

from conversations.models import Conversation, ConversationMessage

TIMEOUT = 20.0


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def recv_json(socket: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def chat_socket(server: Any, conversation_id: int, token: str) -> tuple[Any, dict]:
    """A chat websocket on `server` past its `ready` frame: (socket, ready)."""
    socket = await websockets.connect(
        f"{server.ws_url}/ws/conversations/{conversation_id}/",
        additional_headers=auth(token),
        open_timeout=TIMEOUT,
    )
    ready = await recv_json(socket)
    assert ready["type"] == "ready", ready
    return socket, ready


async def frames_until(
    socket: Any, done: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
) -> list[dict[str, Any]]:
    """Frames until (and including) the first one for which `done` is true."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await recv_json(socket, max(0.01, deadline - time.monotonic()))
        frames.append(frame)
        if done(frame):
            return frames


def ai_final(frame: dict[str, Any]) -> bool:
    """The final event of an AI reply on the chat websocket."""
    return frame.get("type") in ("message.completed", "message.failed") and (
        frame["message"]["role"] == "ai"
    )


async def graphql_socket(server: Any, token: str) -> Any:
    """A graphql-transport-ws connection on `server`, acknowledged."""
    socket = await websockets.connect(
        f"{server.ws_url}/graphql/", subprotocols=["graphql-transport-ws"], open_timeout=TIMEOUT
    )
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = await recv_json(socket)
    assert ack["type"] == "connection_ack", ack
    return socket


async def refused_socket(
    url: str, token: str, graphql: bool = False, timeout: float = 5.0
) -> websockets.frames.Close:
    """Open a websocket the server refuses (during an outage); returns the close it sent.

    With `graphql`, speak graphql-transport-ws and send `connection_init` first. Fails
    unless the server closes the socket within `timeout` of the last frame."""
    kwargs: dict[str, Any] = {"subprotocols": ["graphql-transport-ws"]} if graphql else {}
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(url, additional_headers=auth(token), **kwargs) as socket:
            if graphql:
                payload = {"authorization": f"Bearer {token}"}
                await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            await recv_json(socket, timeout)
    return closed.value.rcvd


EVENTS_SUBSCRIPTION = """
subscription Events($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename
    ... on MessageCreated { message { id role status text } }
    ... on MessageDelta { messageId index offset delta }
    ... on MessageCompleted { message { id role status text } }
    ... on MessageFailed { message { id role status text } error { code } }
  }
}
"""


async def subscribe_events(socket: Any, conversation_id: int, op_id: str = "events") -> None:
    """Subscribe to conversationEvents and wait for its snapshot (the server listens)."""
    await socket.send(
        json.dumps(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {
                    "query": EVENTS_SUBSCRIPTION,
                    "variables": {"id": str(conversation_id)},
                },
            }
        )
    )
    first = await recv_json(socket)
    assert first["type"] == "next", first
    assert first["payload"]["data"]["conversationEvents"]["__typename"] == "ConversationUpdated"


async def live_clients(server: Any, conversation_id: int, token: str) -> tuple[Any, Any]:
    """A chat websocket and a GraphQL socket subscribed to the conversation's events, both
    on `server` and listening: (chat, subscription). The outage tests' starting point."""
    chat, _ = await chat_socket(server, conversation_id, token)
    subscription = await graphql_socket(server, token)
    await subscribe_events(subscription, conversation_id)
    return chat, subscription


async def graphql_events_until_final(
    socket: Any, timeout: float = TIMEOUT, op_id: str = "events"
) -> list[dict]:
    """conversationEvents objects of operation `op_id` until an AI reply's
    MessageCompleted / MessageFailed (other operations' frames are skipped)."""
    events = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await recv_json(socket, max(0.01, deadline - time.monotonic()))
        if frame.get("id") != op_id:
            continue
        assert frame["type"] == "next", frame
        event = frame["payload"]["data"]["conversationEvents"]
        events.append(event)
        if event["__typename"] in ("MessageCompleted", "MessageFailed") and (
            event["message"]["role"] == "AI"
        ):
            return events


def assemble(snapshot_text: str, deltas: list[tuple[int, str]]) -> str:
    """A client's text: a snapshot, then deltas placed by `offset` (skip what it has,
    trim overlaps). Fails on a gap (a delta starting past the end of the text)."""
    text = snapshot_text
    for offset, delta in deltas:
        assert offset <= len(text), f"gap: delta at {offset}, text has {len(text)}"
        if offset + len(delta) > len(text):
            text = text[:offset] + delta
    return text


def message_rows(conversation_id: int) -> list[dict[str, Any]]:
    """The conversation's stored messages, oldest first, as comparable dicts."""
    return [
        {
            "id": row.id,
            "role": row.role,
            "status": row.status,
            "text": row.text,
            "content": row.content,
            "error": row.error,
            "client_message_id": row.client_message_id,
        }
        for row in ConversationMessage.objects.filter(conversation_id=conversation_id).order_by(
            "id"
        )
    ]


arows = sync_to_async(message_rows)


async def wait_idle(conversation_id: int, timeout: float = TIMEOUT) -> Conversation:
    """Wait until no turn holds the conversation; returns it fresh."""
    deadline = time.monotonic() + timeout
    while True:
        conversation = await Conversation.objects.aget(pk=conversation_id)
        if conversation.active_turn_id is None:
            return conversation
        assert time.monotonic() < deadline, "the turn did not end"
        await asyncio.sleep(0.05)
