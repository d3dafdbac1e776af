"""The changes feed never misses a change: concurrent writers on two server processes,
one reader following the feed, and at the end the reader's copy equals the database.

Writers run turns, regenerates, renames, clears and deletes on several conversations
through REST on two uvicorn processes at once; the reader syncs from a third client the
whole time (from either process). Runs on SQLite (both servers open the test file) and
on PostgreSQL, where the per-user counter row is what orders the commits.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async

from tests.support.sync import Replica, database_state

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

WRITERS = 4
ROUNDS = 3


async def write(client: httpx.AsyncClient, index: int) -> list[str]:
    """One writer's story on its own conversations; returns what it could not do."""
    problems = []

    def check(response: httpx.Response, *expected: int) -> None:
        if response.status_code not in expected:
            problems.append(f"{response.request.url.path}: {response.status_code}")

    created = await client.post(
        "/api/v1/conversations/", json={"agent": "plain", "title": f"writer {index}"}
    )
    check(created, 201)
    conversation = created.json()["id"]
    base = f"/api/v1/conversations/{conversation}"
    doomed = await client.post("/api/v1/conversations/", json={"agent": "plain"})
    check(doomed, 201)
    for round_number in range(ROUNDS):
        check(await client.post(f"{base}/messages/", json={"content": f"q{round_number}"}), 201)
        check(await client.patch(f"{base}/", json={"title": f"w{index} r{round_number}"}), 200)
        check(await client.post(f"{base}/regenerate/"), 201)
        if round_number == 1:
            check(await client.post(f"{base}/clear/"), 200)
    check(await client.delete(f"/api/v1/conversations/{doomed.json()['id']}/"), 204)
    return problems


async def follow(client: httpx.AsyncClient, cursor: str, done: asyncio.Event) -> Replica:
    replica = Replica()
    while True:
        finished = done.is_set()  # read before the sync: then that sync sees every write
        while True:
            response = await client.get("/api/v1/sync/", params={"cursor": cursor, "limit": 7})
            assert response.status_code == 200, response.text
            body = response.json()
            replica.apply_all(body["changes"])
            cursor = body["cursor"]
            if not body["has_more"]:
                break
        if finished:
            return replica
        await asyncio.sleep(0.02)


async def test_a_reader_of_the_feed_ends_with_the_database(
    live_server_factory, llm, token, user, plain_agent
):
    env = {"CONFAB_THROTTLE_TURNS": "10000/min", "CONFAB_THROTTLE_USER": "100000/min"}
    servers = [live_server_factory(extra_env=env), live_server_factory(extra_env=env)]
    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) for server in servers
    ]
    reader = httpx.AsyncClient(base_url=servers[1].url, headers=headers, timeout=60)
    try:
        start = (await reader.get("/api/v1/sync/")).json()["cursor"]
        done = asyncio.Event()
        following = asyncio.ensure_future(follow(reader, start, done))
        problems = await asyncio.gather(
            *(write(clients[index % 2], index) for index in range(WRITERS))
        )
        done.set()
        replica = await following
    finally:
        for client in [*clients, reader]:
            await client.aclose()
    assert problems == [[]] * WRITERS
    conversations, messages = await sync_to_async(database_state)(user)
    assert len(conversations) == WRITERS and messages
    assert replica.conversations == conversations
    assert replica.messages == messages
