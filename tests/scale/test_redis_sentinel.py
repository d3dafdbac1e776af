"""Redis with Sentinel failover: the master dies mid-turn, a replica takes over.

The test starts its own Redis master, one replica and three sentinels (redis-server
--sentinel, free ports, quorum 2, master declared down after 1 s) and two Confab
processes configured with REDIS_SENTINELS / REDIS_SENTINEL_MASTER only (no REDIS_URL):
channel layer, cache and rate limits find the master through the sentinels.

A turn runs on B while a chat websocket on A streams it. The master is SIGKILLed
mid-reply. What must hold: A's socket is closed 4503 (it would otherwise miss events
silently); the client reconnects (refused with 4503 until the sentinels have promoted
the replica), resumes and sees the rest of the reply live through the new master; the
stored reply is complete; nothing is lost; rate limits count again (sign-in works); a
new turn streams delta by delta. The pause (kill -> live again) is printed and recorded
in docs/deploy.md.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.daemons import start_redis
from tests.support.live_clients import (
    ai_final,
    assemble,
    auth,
    frames_until,
    recv_json,
    wait_idle,
)
from tests.support.requirements import needs_postgres

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Three sentinels, two nodes and two servers to start: slower than the default 120 s
    # on a loaded machine.
    pytest.mark.timeout(300),
    needs_postgres("Redis Sentinel failover with two processes"),
]

MASTER = "confab"
WORDS = [f"w{i:03d} " for i in range(200)]  # ~10 s at 0.05 s a chunk


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sentinel_redis():
    directory = Path(tempfile.mkdtemp(prefix="confab-sentinel-"))
    master = start_redis(directory)
    replica = start_redis(directory, replica_of=master.port)
    config = (
        f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 2\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 10000\n"
        f"sentinel parallel-syncs {MASTER} 1\n"
    )
    sentinels = [start_redis(directory, sentinel_config=config) for _ in range(3)]
    try:
        wait(
            lambda: replica.client().info("replication")["master_link_status"] == "up",
            20,
            "the replica to sync",
        )
        for sentinel in sentinels:
            client = sentinel.client()
            wait(
                lambda c=client: (
                    len(c.sentinel_sentinels(MASTER)) == 2 and len(c.sentinel_slaves(MASTER)) == 1
                ),
                30,
                "the sentinels to find each other and the replica",
            )
        yield master, replica, sentinels
    finally:
        for node in [*sentinels, replica, master]:
            node.kill()
        shutil.rmtree(directory, ignore_errors=True)


async def reconnect(server: Any, conversation_id: int, token: str, timeout: float = 30) -> Any:
    """Reconnect a chat socket, retrying while the server refuses it (4503)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket = await websockets.connect(
                f"{server.ws_url}/ws/conversations/{conversation_id}/",
                additional_headers=auth(token),
                open_timeout=5,
            )
            frame = await recv_json(socket, 5)
            if frame["type"] == "ready":
                return socket
        except (websockets.ConnectionClosed, OSError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the chat socket never reconnected")
        await asyncio.sleep(0.2)


async def test_master_killed_mid_turn_clients_resume_nothing_lost(
    live_server_factory, llm, conversation, token, user, sentinel_redis
):
    master, replica, sentinels = sentinel_redis
    env = {
        "REDIS_URL": "",
        "REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in sentinels),
        "REDIS_SENTINEL_MASTER": MASTER,
    }
    a = live_server_factory(extra_env=env)
    b = live_server_factory(extra_env=env)
    try:
        await failover(a, b, llm, conversation, token, master, replica, sentinels)
    except BaseException as exc:
        raise AssertionError(
            f"A log:\n{a.log()[-5000:]}\nB log:\n{b.log()[-5000:]}"
            f"\nsentinel log:\n{sentinels[0].log()[-3000:]}"
        ) from exc


async def failover(a, b, llm, conversation, token, master, replica, sentinels) -> None:
    full_text = "".join(WORDS)
    rest_b = httpx.AsyncClient(base_url=b.url, headers=auth(token), timeout=60)
    anon_a = httpx.AsyncClient(base_url=a.url, timeout=30)
    sign_in = {"username": "alice", "password": "alice-password-1"}
    assert (await anon_a.post("/api/v1/auth/token/", json=sign_in)).status_code == 200

    chat = await reconnect(a, conversation.pk, token)
    llm.reply_text(WORDS, chunk_delay=0.05)
    running = asyncio.ensure_future(
        rest_b.post(
            f"/api/v1/conversations/{conversation.pk}/messages/", json={"content": "failover"}
        )
    )
    before = await frames_until(chat, lambda f: f["type"] == "message.delta" and f["index"] >= 5)
    human_id = next(f["message"]["id"] for f in before if f["type"] == "message.created")
    seen = "".join(f["delta"] for f in before if f["type"] == "message.delta")

    master.kill()
    killed = time.monotonic()
    # A's socket is told live updates stopped (a failed publish or A's watch).
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            frame = await recv_json(chat, 15)
            if frame["type"] == "message.delta":
                seen += frame["delta"]
    assert closed.value.rcvd.code == 4503, closed.value.rcvd

    # The client reconnects (refused until a new master is elected) and resumes.
    chat = await reconnect(a, conversation.pk, token)
    pause = time.monotonic() - killed
    await chat.send(json.dumps({"type": "resume", "after_id": human_id}))
    frames = await frames_until(chat, ai_final, timeout=30)
    snapshot = next(
        f
        for f in frames
        if f["type"] in ("message.created", "message.completed") and f["message"]["role"] == "ai"
    )
    # A client places deltas by offset after its snapshot (the documented resume rule):
    # `assemble` fails on a gap, so the text it builds shows nothing was lost.
    resumed = assemble(
        snapshot["message"]["text"],
        [(f["offset"], f["delta"]) for f in frames if f["type"] == "message.delta"],
    )
    live_deltas = sum(1 for f in frames if f["type"] == "message.delta")
    assert frames[-1]["type"] == "message.completed", frames[-1]
    assert frames[-1]["message"]["text"] == full_text
    assert resumed == full_text  # snapshot + live deltas: nothing lost or doubled
    assert full_text.startswith(seen)
    print(
        f"\nSentinel failover: live again {pause:.1f} s after the master was killed; "
        f"{live_deltas} deltas streamed live after the resume"
    )

    result = (await running).json()
    assert result["ai_message"]["status"] == "complete"
    assert result["ai_message"]["text"] == full_text
    await wait_idle(conversation.pk)

    # The sentinels promoted the replica; the cache (rate limits) works on it.
    promoted = sentinels[0].client().sentinel_get_master_addr_by_name(MASTER)
    assert int(promoted[1]) == replica.port
    assert replica.client().info("replication")["role"] == "master"
    assert (await anon_a.post("/api/v1/auth/token/", json=sign_in)).status_code == 200

    # A new turn streams delta by delta through the new master, across processes.
    llm.reply_text(["after ", "the ", "failover"], chunk_delay=0.05)
    next_turn = asyncio.ensure_future(
        rest_b.post(f"/api/v1/conversations/{conversation.pk}/messages/", json={"content": "again"})
    )
    frames = await frames_until(chat, ai_final, timeout=30)
    assert "".join(f["delta"] for f in frames if f["type"] == "message.delta") == (
        "after the failover"
    )
    assert (await next_turn).status_code == 201
    await chat.close()
    await rest_b.aclose()
    await anon_a.aclose()
