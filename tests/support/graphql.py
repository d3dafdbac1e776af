"""Clients and tools for the GraphQL tests (see conftest.py for the fixtures)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from backend.asgi import application
from conversations.models import Conversation
from tests.support.live_clients import wait_idle

TIMEOUT = 10.0

# Documents more than one test module sends.
ERRORS = "errors { field code message }"
MESSAGE_FIELDS = """
    id conversationId role text content status turnId clientMessageId model usage error
    createdAt updatedAt
"""
CONVERSATION_FIELDS = f"""
    id title context archived archivedAt lastMessageAt messageCount activeTurnId createdAt
    updatedAt agent {{ slug name }} lastMessage {{ {MESSAGE_FIELDS} }}
"""
CONVERSATIONS = f"""
query Conversations($first: Int, $after: String, $archived: Boolean, $agent: String,
                    $search: String) {{
  conversations(first: $first, after: $after, archived: $archived, agent: $agent,
                search: $search) {{
    edges {{ cursor node {{ {CONVERSATION_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""
MESSAGES = f"""
query Messages($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {{
  messages(conversationId: $id, first: $first, after: $after, last: $last, before: $before) {{
    edges {{ cursor node {{ {MESSAGE_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}
"""
SEND = f"""
mutation($id: ID!, $content: String!, $clientMessageId: String) {{
  sendMessage(conversationId: $id, content: $content, clientMessageId: $clientMessageId) {{
    humanMessage {{ id role text status turnId clientMessageId conversationId }}
    aiMessage {{ id role text status turnId }}
    {ERRORS}
  }}
}}
"""


class GraphQLHTTP:
    """POST GraphQL operations to /graphql/ through the ASGI application."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql/", json=body, headers=all_headers)

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> dict[str, Any]:
        """The JSON body of a 200 response."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> dict[str, Any]:
        """`data` of a response that must have no errors."""
        body = await self.execute(query, variables, token=token)
        assert "errors" not in body, body
        return body["data"]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


class GraphQLSocket:
    """A websocket GraphQL client: graphql-transport-ws (default) or legacy graphql-ws."""

    def __init__(
        self,
        *,
        protocol: str = "graphql-transport-ws",
        path: str = "/graphql/",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.protocol = protocol
        self.communicator = WebsocketCommunicator(
            application, path, headers=headers or [], subprotocols=[protocol]
        )

    @property
    def legacy(self) -> bool:
        return self.protocol == "graphql-ws"

    async def open(self) -> None:
        connected, subprotocol = await self.communicator.connect(timeout=TIMEOUT)
        assert connected, subprotocol
        assert subprotocol == self.protocol

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Open, send connection_init, return the server's answer (ack or error)."""
        await self.open()
        message: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            message["payload"] = payload
        await self.send(message)
        return await self.receive()

    async def connect(self, token: str | None = None) -> None:
        """Open and authenticate (connection_init payload when a token is given)."""
        payload = {"authorization": f"Bearer {token}"} if token else {}
        ack = await self.init(payload)
        assert ack["type"] == "connection_ack", ack

    async def send(self, message: dict[str, Any]) -> None:
        await self.communicator.send_json_to(message)

    async def subscribe(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        kind = "start" if self.legacy else "subscribe"
        await self.send({"id": operation_id, "type": kind, "payload": payload})

    async def complete(self, operation_id: str) -> None:
        await self.send({"id": operation_id, "type": "stop" if self.legacy else "complete"})

    async def receive(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return await self.communicator.receive_json_from(timeout=timeout)

    async def next_data(self, operation_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The `data` of the next result of an operation (fails on anything else)."""
        message = await self.receive(timeout)
        expected = "data" if self.legacy else "next"
        assert message.get("id") == operation_id and message["type"] == expected, message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]

    async def closed_with(self, timeout: float = TIMEOUT) -> int | None:
        """The close code the server sent next (skipping nothing else)."""
        output = await self.communicator.receive_output(timeout=timeout)
        assert output["type"] == "websocket.close", output
        return output.get("code")

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def close(self) -> None:
        await self.communicator.disconnect(timeout=TIMEOUT)


def auth_header(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


async def wait_until_idle(conversation_id: int, timeout: float = TIMEOUT) -> Conversation:
    """Wait until the conversation has no running turn; returns it fresh.

    The reliability tests' `wait_idle` (one polling loop for both suites) with this
    module's shorter default timeout."""
    return await wait_idle(conversation_id, timeout)


def group_members(group: str) -> set[str]:
    """Channel names in a Channels group of this process (pubsub and in-memory layers keep
    membership in-process; the core Redis layer keeps it in Redis and is not supported)."""
    layer = get_channel_layer()
    if hasattr(layer, "_get_layer"):  # channels_redis.pubsub: one loop layer per event loop
        inner = layer._get_layer()
        return set(inner.groups.get(inner._get_group_channel_name(group), set()))
    if isinstance(getattr(layer, "groups", None), dict):  # InMemoryChannelLayer
        return set(layer.groups.get(group, {}))
    pytest.skip("group membership is only observable on the pubsub and in-memory layers")


async def wait_for_members(group: str, count: int = 1, timeout: float = TIMEOUT) -> None:
    """Wait until `count` channels listen to `group` (a subscription is live)."""
    deadline = time.monotonic() + timeout
    while len(group_members(group)) != count:
        assert time.monotonic() < deadline, f"{group} has {group_members(group)}"
        await asyncio.sleep(0.01)


@database_sync_to_async
def db(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a sync ORM/service call from an async test."""
    return fn(*args, **kwargs)
