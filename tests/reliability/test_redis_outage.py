"""Redis (channel layer and cache) goes away mid-turn and comes back.

The live server gets a private redis-server of this test (the shared one on
6379 is never touched), killed with SIGKILL while a reply streams, then
started again on the same port. What must hold:

- turns persist: the running reply ends `complete` in the database, and a turn
  started during the outage runs and is stored too;
- live delivery degrades with clear signals: open chat and GraphQL sockets are
  closed with 4503 "Live updates interrupted" (a client that silently missed
  events would show the reply as streaming forever), new sockets are refused
  with 4503 "Live updates unavailable", publishing logs a warning;
- the API keeps serving from PostgreSQL: rate limits that cannot be counted are
  not applied, except sign-in, which answers 503 rather than allow unlimited
  password guessing;
- after Redis is back, the same process streams live again: a reconnecting
  client resumes the stored history and sees the next turn delta by delta.
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
    graphql_events_until_final,
    graphql_socket,
    live_clients,
    recv_json,
    refused_socket,
    subscribe_events,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = [f"w{i} " for i in range(60)]


async def close_of(socket: Any, timeout: float = 5) -> websockets.frames.Close:
    """The close frame the server sends next (other frames are skipped)."""
    deadline = time.monotonic() + timeout
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await recv_json(socket, max(0.01, deadline - time.monotonic()))
    return closed.value.rcvd


async def test_redis_outage(live_server_factory, llm, conversation, token, user, private_redis):
    server = live_server_factory(extra_env={"REDIS_URL": private_redis.url})
    try:
        await outage(server, llm, conversation, token, private_redis)
    except BaseException as exc:
        raise AssertionError(f"server log:\n{server.log()[-6000:]}") from exc


async def outage(server: Any, llm: Any, conversation: Any, token: str, private_redis: Any) -> None:
    pid = server.process.pid
    rest = httpx.AsyncClient(base_url=server.url, headers=auth(token), timeout=30)
    anon = httpx.AsyncClient(base_url=server.url, timeout=30)
    messages_url = f"/api/v1/conversations/{conversation.pk}/messages/"
    chat_url = f"{server.ws_url}/ws/conversations/{conversation.pk}/"
    sign_in = {"username": "alice", "password": "alice-password-1"}

    chat, subscription = await live_clients(server, conversation.pk, token)
    llm.reply_text(WORDS, chunk_delay=0.05)  # ~3 s
    running = asyncio.ensure_future(rest.post(messages_url, json={"content": "during"}))
    await frames_until(chat, lambda f: f["type"] == "message.delta" and f["index"] >= 3)

    private_redis.kill()
    try:
        # Open sockets are told, within about a second, that live updates stopped.
        for socket in (chat, subscription):
            closed = await close_of(socket)
            assert (closed.code, closed.reason) == (4503, "Live updates interrupted")
        # New sockets are refused with a reason, not an HTTP 500.
        for graphql, url in ((False, chat_url), (True, f"{server.ws_url}/graphql/")):
            closed = await refused_socket(url, token, graphql)
            assert (closed.code, closed.reason) == (4503, "Live updates unavailable")
        # The API still serves from PostgreSQL (rate limits are skipped, logged)...
        assert (await rest.get("/api/v1/conversations/")).status_code == 200
        graphql = await rest.post("/graphql/", json={"query": "{ me { username } }"})
        assert graphql.json() == {"data": {"me": {"username": "alice"}}}
        # ...but sign-in is refused while its attempts cannot be counted.
        response = await anon.post("/api/v1/auth/token/", json=sign_in)
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "SERVICE_UNAVAILABLE"
        assert response.headers["Retry-After"] == "5"

        # The reply that was streaming completes and is stored.
        result = (await running).json()
        assert result["ai_message"]["status"] == "complete"
        assert result["ai_message"]["text"] == "".join(WORDS)
        # A turn started during the outage runs and is stored as well.
        llm.reply_text(["stored ", "anyway"])
        response = await rest.post(messages_url, json={"content": "still there?"})
        assert response.status_code == 201, response.text
        assert response.json()["ai_message"]["text"] == "stored anyway"
    finally:
        private_redis.start()

    # One traceback for the outage, not one per delta that could not be published.
    assert server.log().count("Live delivery of message.delta failed; data is stored.") == 1
    await wait_idle(conversation.pk)
    rows = await arows(conversation.pk)
    assert [(r["role"], r["status"], r["text"]) for r in rows] == [
        ("human", "complete", "during"),
        ("ai", "complete", "".join(WORDS)),
        ("human", "complete", "still there?"),
        ("ai", "complete", "stored anyway"),
    ]

    # Back: a reconnecting client resumes what it missed, then the next turn streams live.
    chat, _ = await chat_socket(server, conversation.pk, token)
    await chat.send(json.dumps({"type": "resume", "after_id": rows[0]["id"]}))
    replay = [await recv_json(chat) for _ in rows[1:]]
    assert [(f["type"], f["message"]["text"]) for f in replay] == [
        ("message.completed", r["text"]) for r in rows[1:]
    ]
    subscription = await graphql_socket(server, token)
    await subscribe_events(subscription, conversation.pk)
    llm.reply_text(["live ", "again ", "after ", "the ", "outage"], chunk_delay=0.05)
    await chat.send(json.dumps({"type": "message", "content": "back?"}))
    frames = await frames_until(chat, ai_final)
    deltas = [f["delta"] for f in frames if f["type"] == "message.delta"]
    assert "".join(deltas) == "live again after the outage" and frames[-1]["message"]["text"]
    events = await graphql_events_until_final(subscription)
    assert "".join(e["delta"] for e in events if e["__typename"] == "MessageDelta") == (
        "live again after the outage"
    )
    assert (await anon.post("/api/v1/auth/token/", json=sign_in)).status_code == 200
    for client in (chat, subscription):
        await client.close()
    await rest.aclose()
    await anon.aclose()
    assert server.process.poll() is None and server.process.pid == pid  # never restarted
    assert server.log().count("Live delivery works again after") == 1
