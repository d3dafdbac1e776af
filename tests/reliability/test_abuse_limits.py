"""Abuse limits hold across surfaces, on a live server, each set from the environment.

Per-surface tests exist for most limits (REST turn and sign-in throttles, the
chat socket cap and idle timeout, GraphQL subscriptions per connection,
content size per surface). These show what only holds across surfaces:

- one turn budget per user (CONFAB_THROTTLE_TURNS) whether turns are started
  over REST, GraphQL or the chat websocket (which had no limit before);
- one content limit (CONFAB_MAX_CONTENT_CHARS) on all three;
- one budget of open websockets per user (CONFAB_WS_MAX_PER_USER), chat and
  GraphQL together (GraphQL had none before);
- idle GraphQL websockets are closed (CONFAB_WS_IDLE_TIMEOUT) unless the client
  pings, like chat sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets

from tests.support.live_clients import (
    ai_final,
    arows,
    auth,
    chat_socket,
    frames_until,
    graphql_socket,
    recv_json,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)

SEND = """
mutation($id: ID!, $content: String!) {
  sendMessage(conversationId: $id, content: $content) { aiMessage { id } errors { code } }
}
"""


async def graphql_send(client: httpx.AsyncClient, conversation_id: int, content: str) -> dict:
    variables = {"id": str(conversation_id), "content": content}
    return (await client.post("/graphql/", json={"query": SEND, "variables": variables})).json()


async def test_one_turn_budget_and_content_limit_for_every_surface(
    live_server_factory, llm, conversation, token, other_token, other_user, plain_agent
):
    server = live_server_factory(
        extra_env={"CONFAB_THROTTLE_TURNS": "3/min", "CONFAB_MAX_CONTENT_CHARS": "100"}
    )
    rest = httpx.AsyncClient(base_url=server.url, headers=auth(token), timeout=30)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    chat, _ = await chat_socket(server, conversation.pk, token)

    # Three turns, one per surface, use up Alice's budget of three...
    for surface in ("chat", "rest", "graphql"):
        llm.reply_text([surface])
        if surface == "chat":
            await chat.send(json.dumps({"type": "message", "content": "one"}))
            await frames_until(chat, ai_final)
        elif surface == "rest":
            assert (await rest.post(url, json={"content": "two"})).status_code == 201
        else:
            assert (await graphql_send(rest, conversation.pk, "three"))["data"]["sendMessage"]
        await wait_idle(conversation.pk)

    # ...and the fourth is refused on every surface, with when to retry.
    response = await rest.post(url, json={"content": "four"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    body = await graphql_send(rest, conversation.pk, "four")
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    await chat.send(json.dumps({"type": "message", "content": "four"}))
    error = (await frames_until(chat, lambda f: f["type"] == "error"))[-1]
    assert error["code"] == "RATE_LIMITED" and error["retry_after"] > 0
    await chat.send(json.dumps({"type": "regenerate"}))
    error = (await frames_until(chat, lambda f: f["type"] == "error"))[-1]
    assert error["code"] == "RATE_LIMITED"
    assert len(await arows(conversation.pk)) == 6 and len(llm.requests) == 3
    assert (await rest.get(url)).status_code == 200  # reading is not a turn
    await chat.close()
    await rest.aclose()

    # Mallory has a budget of her own; too long a message is refused the same way on
    # every surface (attempts count against the budget, refused or not).
    mallory = httpx.AsyncClient(base_url=server.url, headers=auth(other_token), timeout=30)
    created = (await mallory.post("/api/v1/conversations/", json={"agent": "plain"})).json()
    too_long = "x" * 101
    response = await mallory.post(
        f"/api/v1/conversations/{created['id']}/messages/", json={"content": too_long}
    )
    assert response.status_code == 400
    assert response.json()["fields"]["content"][0]["code"] == "too_long"
    body = await graphql_send(mallory, created["id"], too_long)
    assert body["data"]["sendMessage"]["errors"] == [{"code": "too_long"}]
    socket, _ = await chat_socket(server, created["id"], other_token)
    await socket.send(json.dumps({"type": "message", "content": too_long}))
    error = (await frames_until(socket, lambda f: f["type"] == "error"))[-1]
    assert error["fields"]["content"][0]["code"] == "too_long"
    assert await arows(created["id"]) == [] and len(llm.requests) == 3
    await socket.close()
    await mallory.aclose()


async def closed(connect: Any) -> websockets.frames.Close:
    with pytest.raises(websockets.ConnectionClosed) as info:
        socket = await connect()
        await recv_json(socket, 5)
    return info.value.rcvd


async def test_one_websocket_budget_per_user_and_idle_graphql_sockets(
    live_server_factory, llm, conversation, token, other_token
):
    server = live_server_factory(
        extra_env={"CONFAB_WS_MAX_PER_USER": "3", "CONFAB_WS_IDLE_TIMEOUT": "1.5"}
    )
    first_chat, _ = await chat_socket(server, conversation.pk, token)
    second_chat, _ = await chat_socket(server, conversation.pk, token)
    graphql = await graphql_socket(server, token)
    # The budget of three is used by chat and GraphQL sockets together.
    refused = await closed(lambda: graphql_socket(server, token))
    assert (refused.code, refused.reason) == (4429, "Too many open websockets")
    refused = await closed(lambda: chat_socket(server, conversation.pk, token))
    assert refused.code == 4429
    # Legacy graphql-ws clients are told in their protocol's terms.
    legacy = await websockets.connect(f"{server.ws_url}/graphql/", subprotocols=["graphql-ws"])
    await legacy.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    answer = await recv_json(legacy)
    assert answer["type"] == "connection_error", answer
    assert answer["payload"]["code"] == "TOO_MANY_CONNECTIONS"
    await legacy.close()
    # Another user is not affected; a closed socket frees its place.
    other = await graphql_socket(server, other_token)
    await first_chat.close()
    await asyncio.sleep(0.2)
    replacement = await graphql_socket(server, token)

    # Idle: a GraphQL socket that says nothing is closed; one that pings stays open.
    started = time.monotonic()
    pinging = True

    async def keep_alive(socket: Any) -> None:
        while pinging:
            await socket.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(0.4)

    keeper = asyncio.ensure_future(keep_alive(replacement))
    idle = await closed(lambda: asyncio.sleep(0, result=other))
    assert (idle.code, idle.reason) == (4408, "Idle timeout")
    assert 1.0 < time.monotonic() - started < 4
    await asyncio.sleep(1.0)  # past the timeout for the pinging socket too
    pinging = False
    await keeper
    await replacement.send(json.dumps({"type": "ping"}))
    assert (await recv_json(replacement))["type"] == "pong"
    for socket in (second_chat, graphql, replacement):
        await socket.close()
