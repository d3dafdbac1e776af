"""PostgreSQL restarts under a running server.

A live uvicorn process serves a user who has history, an open chat
websocket, a GraphQL subscription and a reply streaming. The cluster is
stopped for a moment (other test runs may share it, so the outage is kept
short and the fixture always starts it again), then started. During the
outage every surface answers within the pool's wait (DB_POOL_TIMEOUT) and
clearly: HTTP 503
`SERVICE_UNAVAILABLE` with `Retry-After` (REST and GraphQL shapes), a
websocket `error` frame on an open socket (which stays open), close 4503 for
a new websocket. Afterwards the same process serves everything again: no
restart, nothing stored lost, and the reply cut by the outage ends `failed`
(`interrupted`) with the text saved before it, found by the recovery sweep.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from tests.support.live_clients import (
    ai_final,
    arows,
    auth,
    chat_socket,
    frames_until,
    graphql_events_until_final,
    live_clients,
    refused_socket,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)

FAST = 5.0  # seconds: connect_timeout is 3 s, a refused connection is immediate
WORDS = [f"word{i} " for i in range(80)]


async def timed(coro: Any) -> Any:
    started = time.monotonic()
    result = await asyncio.wait_for(coro, FAST + 5)
    elapsed = time.monotonic() - started
    assert elapsed < FAST, f"took {elapsed:.1f}s"
    return result


def assert_503(response: httpx.Response, graphql: bool = False) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    if graphql:
        [error] = body["errors"]
        assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "type": "service_unavailable"}
    else:
        assert body["code"] == "SERVICE_UNAVAILABLE" and body["type"] == "service_unavailable"


async def test_postgres_restart(live_server_factory, llm, conversation, token, postgres):
    # A turn whose heartbeat stops counts as dead after 3 s (default 30 s).
    # While PostgreSQL is down a request waits up to DB_POOL_TIMEOUT (3 s by default)
    # for a pooled connection before its 503: 1 s keeps the whole outage short for the
    # other runs that share this cluster.
    server = live_server_factory(
        extra_env={"CONFAB_TURN_STALE_SECONDS": "3", "DB_POOL_TIMEOUT": "1"}
    )
    pid = server.process.pid
    rest = httpx.AsyncClient(base_url=server.url, headers=auth(token), timeout=30)
    messages_url = f"/api/v1/conversations/{conversation.pk}/messages/"
    llm.reply_text(["before ", "the ", "outage"])
    assert (await rest.post(messages_url, json={"content": "first"})).status_code == 201
    before = await arows(conversation.pk)

    chat, subscription = await live_clients(server, conversation.pk, token)
    # A reply is streaming when the database goes away (0.05 s a word, ~4 s).
    llm.reply_text(WORDS, chunk_delay=0.05)
    await chat.send(json.dumps({"type": "message", "content": "during the outage"}))
    await frames_until(chat, lambda f: f["type"] == "message.delta" and f["index"] >= 5)

    outage_started = time.monotonic()
    await asyncio.to_thread(postgres.stop)
    try:
        assert_503(await timed(rest.get("/api/v1/conversations/")))
        assert_503(await timed(rest.post(messages_url, json={"content": "lost?"})))
        assert_503(await timed(rest.post("/graphql/", json={"query": "{ me { id } }"})), True)
        # The open chat socket still answers, and says why a message cannot be taken.
        await chat.send(json.dumps({"type": "ping"}))
        await timed(frames_until(chat, lambda f: f["type"] == "pong"))
        await chat.send(json.dumps({"type": "message", "content": "lost?"}))
        error = (await timed(frames_until(chat, lambda f: f["type"] == "error")))[-1]
        assert error["code"] == "SERVICE_UNAVAILABLE", error
        # An operation started now on the GraphQL socket gets the same code; it stays open.
        query = "query($id: ID!) { conversation(id: $id) { id } }"
        variables = {"id": str(conversation.pk)}
        await subscription.send(
            json.dumps(
                {
                    "id": "late",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables},
                }
            )
        )
        late = (await timed(frames_until(subscription, lambda f: f.get("id") == "late")))[-1]
        assert late["type"] == "next" and late["payload"]["data"] is None, late
        assert late["payload"]["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        # New websockets are closed 4503, not failed with an HTTP 500 or left hanging.
        chat_url = f"{server.ws_url}/ws/conversations/{conversation.pk}/"
        closed = await timed(refused_socket(chat_url, token, timeout=FAST))
        assert closed.code == 4503
        graphql_url = f"{server.ws_url}/graphql/"
        closed = await timed(refused_socket(graphql_url, token, graphql=True, timeout=FAST))
        assert closed.code == 4503
    finally:
        await asyncio.to_thread(postgres.start)
    outage = time.monotonic() - outage_started
    # This test process's own connections died too (the async ORM's thread), and its
    # pool may be backing off from failed reconnects: start it afresh.
    await sync_to_async(connections.close_all)()
    if connections["default"].pool is not None:
        await sync_to_async(connections["default"].close_pool)()

    # The same process reconnects by itself.
    deadline = time.monotonic() + 15
    while (await rest.get("/api/v1/conversations/")).status_code != 200:
        assert time.monotonic() < deadline, "the server did not reconnect"
        await asyncio.sleep(0.2)

    # The reply cut by the outage is ended by the recovery sweep, keeping its saved text.
    await wait_idle(conversation.pk, timeout=20)
    rows = await arows(conversation.pk)
    assert rows[: len(before)] == before  # nothing stored before was lost or changed
    human, ai = rows[len(before) :]
    assert (human["role"], human["status"], human["text"]) == (
        "human",
        "complete",
        "during the outage",
    )
    assert ai["role"] == "ai" and "".join(WORDS).startswith(ai["text"])
    if ai["status"] == "failed":
        assert ai["error"]["code"] == "interrupted"
    else:  # the reply ended before its first write during the outage
        assert ai["status"] == "complete" and ai["text"] == "".join(WORDS)

    # Every surface works again on the sockets opened before the outage, and on new ones.
    llm.reply_text(["back ", "again"])
    await chat.send(json.dumps({"type": "message", "content": "after"}))
    final = (await frames_until(chat, lambda f: ai_final(f) and f["message"]["id"] > ai["id"]))[-1]
    assert final["message"]["status"] == "complete" and final["message"]["text"] == "back again"
    while True:  # (first, the events of the cut reply, sent while the sweep ended it)
        event = (await graphql_events_until_final(subscription))[-1]
        if int(event["message"]["id"]) > ai["id"]:
            break
    assert (event["__typename"], event["message"]["text"]) == ("MessageCompleted", "back again")
    fresh, _ = await chat_socket(server, conversation.pk, token)
    await fresh.close()
    response = await rest.post("/graphql/", json={"query": "{ me { username } }"})
    assert response.json() == {"data": {"me": {"username": "alice"}}}
    await chat.close()
    await subscription.close()
    await rest.aclose()

    assert server.process.poll() is None and server.process.pid == pid  # never restarted
    assert len(await arows(conversation.pk)) == len(before) + 4
    assert outage < 15, f"outage lasted {outage:.1f}s"
