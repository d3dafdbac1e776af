"""A PostgreSQL streaming replica for history pages, search and the changes feed.

The test starts its own primary (initdb, on a free port: the machine's cluster does not
allow replication connections) and a streaming replica of it (pg_basebackup -R, a second
port), migrates the primary, and runs a live Confab server with `DATABASE_URL` on the
primary and `DATABASE_REPLICA_URL` on the replica.

To see which server answered, the replica's replay is paused and a row is changed on
the primary behind Confab's back (psql, no Confab write, so no user's read-your-writes
position moves): a read served by the replica still shows the old value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.daemons import start_primary, start_replica, wait_replayed
from tests.support.requirements import needs_postgres
from tests.support.servers import ROOT, LiveServer, launch_uvicorn

pytestmark = [
    needs_postgres("a PostgreSQL streaming replica"),
    # initdb, migrate, pg_basebackup and a server: slower than the default 120 s on a
    # loaded machine.
    pytest.mark.timeout(300),
]

DATABASE = "confab_replica_test"


@pytest.fixture
def clusters():
    primary = start_primary()
    replica = None
    try:
        primary.sql(f"CREATE DATABASE {DATABASE}")
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": primary.url(DATABASE),
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        replica = start_replica(primary)
        wait_replayed(primary, replica)
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


@pytest.fixture
def server(clusters, llm, tmp_path):
    primary, replica = clusters
    live = launch_uvicorn(
        LiveServer,
        settings="tests.settings",
        env={
            "DATABASE_URL": primary.url(DATABASE),
            "DATABASE_REPLICA_URL": replica.url(DATABASE),
            "OPENAI_BASE_URL": llm.base_url,
            "CONFAB_REPLICA_RETRY_SECONDS": "1",
            # Sign-ups from 127.0.0.1 are counted per hour in the shared Redis: earlier
            # tests of this run may have spent them.
            "CONFAB_THROTTLE_REGISTER": "1000/hour",
        },
        log_dir=tmp_path,
    )
    yield live
    live.stop()


def wait_reply(client: httpx.Client, conversation_id: int, message_id: int) -> dict:
    url = f"/api/v1/conversations/{conversation_id}/messages/{message_id}/"
    for _ in range(200):
        message = client.get(url).json()
        if message["status"] != "streaming":
            return message
        time.sleep(0.05)
    raise AssertionError(f"reply {message_id} still streaming")


def texts(client: httpx.Client, conversation_id: int) -> list[str]:
    response = client.get(f"/api/v1/conversations/{conversation_id}/messages/")
    assert response.status_code == 200, response.text
    return [message["text"] for message in response.json()["results"]]


def titles(client: httpx.Client, search: str) -> list[str]:
    response = client.get("/api/v1/conversations/", params={"q": search})
    assert response.status_code == 200, response.text
    return [conversation["title"] for conversation in response.json()["results"]]


def synced_texts(client: httpx.Client, cursor: str) -> list[str]:
    response = client.get("/api/v1/sync/", params={"cursor": cursor})
    assert response.status_code == 200, response.text
    return [c["message"]["text"] for c in response.json()["changes"] if "message" in c]


def test_replica_serves_reads_and_every_user_reads_their_own_writes(clusters, server, llm):
    primary, replica = clusters
    client = httpx.Client(base_url=server.url, timeout=30)
    registered = client.post(
        "/api/v1/auth/register/", json={"username": "reader", "password": "reader-password-1"}
    )
    assert registered.status_code == 201, registered.text
    client.headers["Authorization"] = f"Bearer {registered.json()['token']}"
    start = client.get("/api/v1/sync/").json()["cursor"]
    created = client.post("/api/v1/conversations/", json={"agent": "assistant", "title": "alpha"})
    assert created.status_code == 201, created.text
    conversation_id = created.json()["id"]
    llm.reply_text(["first ", "answer"])
    sent = client.post(
        f"/api/v1/conversations/{conversation_id}/messages/", json={"content": "first question"}
    )
    assert sent.status_code == 201, sent.text
    human_id = sent.json()["human_message"]["id"]
    assert wait_reply(client, conversation_id, sent.json()["ai_message"]["id"])["text"] == (
        "first answer"
    )
    wait_replayed(primary, replica)

    # 1. The replica serves the routed reads: with its replay paused, a change made on
    # the primary behind Confab's back is not seen by history, search or the feed.
    replica.sql("SELECT pg_wal_replay_pause()")
    primary.sql(
        "UPDATE conversations_conversationmessage SET text = 'edited behind' "
        f"WHERE id = {human_id}",
        DATABASE,
    )
    primary.sql(
        "UPDATE conversations_conversation SET title = 'renamed behind' "
        f"WHERE id = {conversation_id}",
        DATABASE,
    )
    assert texts(client, conversation_id) == ["first question", "first answer"]
    assert titles(client, "alpha") == ["alpha"]
    assert titles(client, "behind") == []
    assert "edited behind" not in synced_texts(client, start)
    # (Unrouted reads, e.g. one conversation by id, are the primary's.)
    assert client.get(f"/api/v1/conversations/{conversation_id}/").json()["title"] == (
        "renamed behind"
    )

    # 2. Read-your-writes: the replica is still paused, so after the user's own write
    # their routed reads go to the primary: they see the write at once (and the rows
    # changed behind Confab's back with it).
    llm.reply_text(["second ", "answer"])
    sent = client.post(
        f"/api/v1/conversations/{conversation_id}/messages/", json={"content": "second question"}
    )
    assert sent.status_code == 201, sent.text
    assert texts(client, conversation_id)[:3] == [
        "edited behind",
        "first answer",
        "second question",
    ]
    wait_reply(client, conversation_id, sent.json()["ai_message"]["id"])
    assert texts(client, conversation_id) == [
        "edited behind",
        "first answer",
        "second question",
        "second answer",
    ]
    renamed = client.patch(f"/api/v1/conversations/{conversation_id}/", json={"title": "gamma"})
    assert renamed.status_code == 200, renamed.text
    assert titles(client, "gamma") == ["gamma"]
    assert "second answer" in synced_texts(client, start)

    # 3. Once the replica has replayed the user's last write, it serves them again.
    replica.sql("SELECT pg_wal_replay_resume()")
    wait_replayed(primary, replica)
    replica.sql("SELECT pg_wal_replay_pause()")
    primary.sql(
        "UPDATE conversations_conversation SET title = 'delta behind' "
        f"WHERE id = {conversation_id}",
        DATABASE,
    )
    assert titles(client, "gamma") == ["gamma"]
    assert titles(client, "delta") == []

    # 4. The replica stopped: routed reads fall back to the primary.
    replica.stop("immediate")
    assert titles(client, "delta") == ["delta behind"]
    assert texts(client, conversation_id)[-1] == "second answer"
    assert "second answer" in synced_texts(client, start)
    assert "Read replica unavailable" in server.log()
    client.close()
