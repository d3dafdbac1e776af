"""Confab behind PgBouncer in transaction mode (Debian's pgbouncer, started here).

In transaction mode a client has a server connection only for the length of one
transaction: the next statement outside it may run on another backend. Anything kept
in the session (prepared statements, server-side cursors, SET, advisory locks, LISTEN,
temporary tables) breaks or leaks. Two Confab processes run through one PgBouncer whose
pool holds fewer server connections than they have threads, with Django's own pool off
(`DB_POOL=0`) and server-side cursors off (`DB_DISABLE_SERVER_SIDE_CURSORS=1`): the
REST + websocket + GraphQL flow and the turn engine work, and PgBouncer's own
statistics show the transactions went through it.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from conversations.inputs import encode_sync_cursor
from conversations.models import ConversationMessage
from tests.scale.test_two_processes import (
    DELTAS,
    auth,
    chat_events_until_done,
    check_delta_stream,
    graphql_events_until_done,
    open_chat_socket,
    open_subscription,
)
from tests.support.daemons import start_pgbouncer
from tests.support.requirements import needs_postgres, needs_redis
from tests.test_settings import run_manage

POOL_SIZE = 3


@pytest.fixture
def pgbouncer():
    port = connection.settings_dict.get("PORT") or 5432
    bouncer = start_pgbouncer(upstream_port=int(port), pool_size=POOL_SIZE)
    yield bouncer
    bouncer.stop()


@pytest.fixture
def bounced_servers(live_server_factory, pgbouncer, seed_agents):
    env = {
        "DATABASE_URL": pgbouncer.url(connection.settings_dict["NAME"]),
        "DB_POOL": "0",
        "DB_CONN_MAX_AGE": "0",
        "DB_DISABLE_SERVER_SIDE_CURSORS": "1",
    }
    return live_server_factory(extra_env=env), live_server_factory(extra_env=env)


def gql(client: httpx.AsyncClient, query: str, **variables) -> dict:
    async def run() -> dict:
        response = await client.post("/graphql/", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    return run()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
@needs_redis("two processes behind PgBouncer (events between processes)")
@needs_postgres("PgBouncer in front of PostgreSQL")
async def test_rest_websocket_graphql_and_turns_through_pgbouncer(
    bounced_servers, pgbouncer, llm, plain_agent, user, token
):
    a, b = bounced_servers
    database = connection.settings_dict["NAME"]
    async with (
        httpx.AsyncClient(base_url=a.url, headers=auth(token), timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.url, headers=auth(token), timeout=30) as on_b,
    ):
        # GraphQL on A creates the conversation.
        created = await gql(
            on_a,
            'mutation($agent: String!) { createConversation(agent: $agent, title: "pb") '
            "{ conversation { id } errors { code } } }",
            agent=plain_agent.slug,
        )
        conversation_id = int(created["createConversation"]["conversation"]["id"])

        # A turn started over REST on B, watched on A's websocket and subscription.
        llm.reply_text(DELTAS, chunk_delay=0.01)
        chat = await open_chat_socket(a, conversation_id, token)
        subscription = await open_subscription(a, conversation_id, token)
        try:
            chat_task = asyncio.ensure_future(chat_events_until_done(chat))
            graphql_task = asyncio.ensure_future(graphql_events_until_done(subscription))
            response = await on_b.post(
                f"/api/v1/conversations/{conversation_id}/messages/",
                json={"content": "through the bouncer", "client_message_id": "pb-1"},
            )
            assert response.status_code == 201, response.text
            chat_events, graphql_events = await asyncio.gather(chat_task, graphql_task)

            # A second turn, sent by GraphQL on A, followed on the same websocket.
            llm.reply_text(["second ", "reply"])
            chat_task = asyncio.ensure_future(chat_events_until_done(chat))
            sent = await gql(
                on_a,
                'mutation($id: ID!) { sendMessage(conversationId: $id, content: "again") '
                "{ aiMessage { id status } errors { code } } }",
                id=str(conversation_id),
            )
            assert sent["sendMessage"]["errors"] == [], sent
            second_events = await chat_task
        finally:
            await chat.close()
            await subscription.close()

        text = "".join(DELTAS)
        deltas = [
            (e["index"], e["offset"], e["delta"])
            for e in chat_events
            if e["type"] == "message.delta"
        ]
        check_delta_stream(deltas, text)
        assert chat_events[-1]["type"] == "message.completed"
        assert graphql_events[-1]["__typename"] == "MessageCompleted"
        assert graphql_events[-1]["message"]["text"] == text
        assert second_events[-1]["type"] == "message.completed"
        assert second_events[-1]["message"]["text"] == "second reply"

        # Reads through the bouncer on both processes: REST history, GraphQL history,
        # the changes feed, the conversation list with a search.
        history = await on_b.get(f"/api/v1/conversations/{conversation_id}/messages/")
        assert history.status_code == 200, history.text
        assert [m["text"] for m in history.json()["results"]] == [
            "through the bouncer",
            text,
            "again",
            "second reply",
        ]
        page = await gql(
            on_a,
            "query($id: ID!) { messages(conversationId: $id) { totalCount nodes { status } } }",
            id=str(conversation_id),
        )
        assert page["messages"]["totalCount"] == 4
        assert {node["status"] for node in page["messages"]["nodes"]} == {"COMPLETE"}
        feed = await on_a.get("/api/v1/sync/", params={"cursor": encode_sync_cursor(0)})
        assert feed.status_code == 200, feed.text
        assert any(c["type"] == "message.upserted" for c in feed.json()["changes"])
        listed = await on_b.get("/api/v1/conversations/", params={"q": "pb"})
        assert [c["id"] for c in listed.json()["results"]] == [conversation_id]

        # The one-active-turn rule (a row lock inside one transaction) holds through it.
        llm.reply_text(DELTAS, chunk_delay=0.03)
        url = f"/api/v1/conversations/{conversation_id}/messages/"
        responses = await asyncio.gather(
            *((on_a if i % 2 else on_b).post(url, json={"content": f"race {i}"}) for i in range(10))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(201) == 1, [(r.status_code, r.text[:200]) for r in responses]
        assert statuses.count(409) == 9
        winner = next(r for r in responses if r.status_code == 201).json()
        for _ in range(200):
            reply = await on_a.get(
                f"/api/v1/conversations/{conversation_id}/messages/{winner['ai_message']['id']}/"
            )
            if reply.json()["status"] != "streaming":
                break
            await asyncio.sleep(0.05)
        assert reply.json()["status"] == "complete", reply.text

    stored = await sync_to_async(list)(
        ConversationMessage.objects.filter(conversation_id=conversation_id).values_list(
            "status", flat=True
        )
    )
    assert stored == ["complete"] * 6

    # It all went through PgBouncer, in transaction mode, on at most POOL_SIZE backends.
    stats = {row["database"]: row for row in pgbouncer.admin("SHOW STATS")}
    assert stats[database]["total_xact_count"] > 50, stats
    pools = [row for row in pgbouncer.admin("SHOW POOLS") if row["database"] == database]
    assert pools and pools[0]["pool_mode"] == "transaction"
    servers = [row for row in pgbouncer.admin("SHOW SERVERS") if row["database"] == database]
    assert len(servers) <= POOL_SIZE
    for server in (a, b):
        log = server.log()
        assert "Traceback" not in log, log[-4000:]
    assert "ERROR" not in pgbouncer.log().replace("ERROR: ", "ERROR "), pgbouncer.log()[-4000:]


def test_pgbouncer_settings_turn_off_session_features():
    """The knobs docs/deploy.md sets behind PgBouncer reach Django's database settings."""
    code = (
        "import django; from django.conf import settings; django.setup(); "
        "db = settings.DATABASES['default']; "
        "print(db['DISABLE_SERVER_SIDE_CURSORS'], db['OPTIONS'].get('pool'), db['CONN_MAX_AGE'])"
    )
    env = {"DEBUG": "1", "DATABASE_URL": "postgres://confab@127.0.0.1:6432/confab"}
    behind = run_manage(
        "shell", "-c", code, env={**env, "DB_POOL": "0", "DB_DISABLE_SERVER_SIDE_CURSORS": "1"}
    )
    assert behind.returncode == 0, behind.stderr
    assert behind.stdout.split()[-3:] == ["True", "None", "0"], behind.stdout
    direct = run_manage("shell", "-c", code, env=env)
    assert direct.stdout.splitlines()[-1].split()[0] == "False", direct.stdout
