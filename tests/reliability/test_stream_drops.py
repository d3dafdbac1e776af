"""Streams dropped at random points rebuild exactly the stored text, on every surface.

A live server runs turns scripted on the fake OpenAI server: a tool round (an AI reply
with text and a calculator call, the tool's result) then a long streamed answer. A
client follows each turn and drops its stream at a chosen point — before the first
delta, in the middle of the reply, between the tool round and the answer, after the
end — and at seeded random points besides, then reconnects from where it was:

- REST: the first stream is the `POST messages/` SSE response; reconnects are
  `GET events/` with `Last-Event-ID` or a re-post of the same `client_message_id`
  (seeded choice). Every delta must start exactly where the client's text ends.
- GraphQL: `conversationEvents(after:)` with the client's position; same strictness.
- Websocket: `resume {after_id}`, deltas placed by offset (its documented rule).

At the end every stored message's text equals the client's. The seed is printed in the
failure and can be set with CONFAB_DROP_SEED to replay a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from conversations.services import create_conversation
from tests.support.fakeopenai import ToolCall
from tests.support.live_clients import (
    arows,
    auth,
    chat_socket,
    graphql_socket,
    recv_json,
    wait_idle,
)
from tests.support.streams import Rebuilt, from_graphql

pytestmark = pytest.mark.django_db(transaction=True)

SEED = int(os.environ.get("CONFAB_DROP_SEED", "1616"))
WORDS = [f"w{i:02d} " for i in range(36)]
ANSWER = "".join(WORDS)
PLANS = ["before_first_delta", "between_tool_rounds", "mid_reply", "after_end", "random"]
MAX_DROPS = 8


def script_turn(llm: Any) -> None:
    llm.reply_tool_calls(
        [ToolCall("calculator", {"expression": "6*7"})],
        content=["Let ", "me ", "work ", "it ", "out. "],
        chunk_delay=0.04,
    )
    llm.reply_text(WORDS, chunk_delay=0.03)


class Dropper:
    """When a client drops its stream: once at the plan's point, then at random."""

    def __init__(self, plan: str, rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self.planned_done = False
        self.drops = 0
        self.answer_deltas = 0
        self.mid_at = rng.randint(2, len(WORDS) - 6)

    def after(self, event: dict[str, Any], client: Rebuilt) -> bool:
        """True: drop the stream now (after `event` was applied)."""
        if self.drops >= MAX_DROPS:
            return False
        kind = event["type"]
        message = event.get("message") or {}
        planned = False
        if not self.planned_done:
            if self.plan == "before_first_delta":
                planned = kind == "message.created" and message.get("role") == "ai"
            elif self.plan == "between_tool_rounds":
                planned = message.get("role") == "tool"
            elif self.plan == "mid_reply" and kind == "message.delta":
                if client.texts.get(event["message_id"], "").startswith(WORDS[0]):
                    self.answer_deltas += 1
                    planned = self.answer_deltas >= self.mid_at
            elif self.plan == "after_end":
                planned = kind in ("message.completed",) and message.get("text") == ANSWER
        if planned:
            self.planned_done = True
        drop = planned or (self.plan == "random" and self.rng.random() < 0.12)
        drop = drop or self.rng.random() < 0.03
        self.drops += drop
        return drop


def turn_done(client: Rebuilt) -> bool:
    return any(client.texts[m] == ANSWER for m in client.final if m in client.texts)


# --- REST SSE --------------------------------------------------------------------------


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict]]:
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in fields:
                yield fields.get("id", ""), json.loads(fields["data"])
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")


async def follow_rest(
    http: httpx.AsyncClient, conversation_id: int, token: str, plan: str, rng: random.Random
) -> tuple[Rebuilt, int]:
    """One turn over REST SSE, dropped and resumed per plan; returns the client's state."""
    client = Rebuilt(strict=True)
    dropper = Dropper(plan, rng)
    base = f"/api/v1/conversations/{conversation_id}"
    headers = {**auth(token), "Accept": "text/event-stream"}
    body = {"content": f"what is 6*7? ({plan})", "client_message_id": uuid.uuid4().hex}
    last_id: str | None = None
    connections = 0
    while True:
        connections += 1
        if connections == 1 or rng.random() < 0.3:
            # The send itself (first time), or its repeat: the turn's stored messages,
            # then the rest of the turn, joined up with what was stored.
            request = http.build_request("POST", f"{base}/messages/", json=body, headers=headers)
        else:
            extra = {"Last-Event-ID": last_id} if last_id else {}
            request = http.build_request("GET", f"{base}/events/", headers={**headers, **extra})
        response = await http.send(request, stream=True)
        assert response.status_code in (200, 201), response.status_code
        dropped = False
        events = sse_events(response)
        try:
            while True:
                try:
                    event_id, event = await asyncio.wait_for(
                        anext(events), timeout=1.5 if turn_done(client) else 20
                    )
                except (StopAsyncIteration, TimeoutError):
                    break  # the turn's stream ended, or the events stream has nothing more
                client.apply(event)
                last_id = event_id or last_id
                if dropper.after(event, client):
                    dropped = True
                    break
        finally:
            await response.aclose()
        if turn_done(client) and not dropped:
            return client, connections


@pytest.fixture
def assistant_conversation(user, seed_agents):
    return create_conversation(user=user, agent="assistant", title="drops")


async def test_rest_sse_drops_rebuild_the_stored_text(
    live_server_factory, llm, assistant_conversation, token
):
    server = live_server_factory()
    rng = random.Random(SEED)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        for plan in PLANS:
            script_turn(llm)
            client, connections = await follow_rest(
                http, assistant_conversation.pk, token, plan, rng
            )
            context = f"REST plan={plan} seed={SEED} connections={connections}"
            await check_stored_turn(assistant_conversation.pk, client, context)


async def check_stored_turn(conversation_id: int, client: Rebuilt, context: str) -> None:
    """The turn's stored messages all equal the client's rebuilt ones."""
    await wait_idle(conversation_id)
    rows = await arows(conversation_id)
    mine = [row for row in rows if row["id"] in client.texts]
    assert len(mine) == 4, (context, [(r["id"], r["role"]) for r in rows], client.texts.keys())
    assert [r["role"] for r in mine] == ["human", "ai", "tool", "ai"], context
    for row in mine:
        assert client.texts[row["id"]] == row["text"], (context, row["id"], row["role"])
        assert row["id"] in client.final, (context, row["id"], "not final for the client")
    assert mine[-1]["text"] == ANSWER


# --- GraphQL -----------------------------------------------------------------------------

SUBSCRIPTION = """
subscription Events($id: ID!, $after: String) {
  conversationEvents(conversationId: $id, after: $after) {
    __typename
    ... on MessageCreated { message { id role status text } }
    ... on MessageDelta { messageId index offset delta }
    ... on MessageCompleted { message { id role status text } }
    ... on MessageFailed { message { id role status text } }
    ... on MessageDeleted { messageIds }
    ... on ConversationUpdated { conversation { activeTurnId } }
  }
}
"""

SEND = """
mutation Send($id: ID!, $content: String!) {
  sendMessage(conversationId: $id, content: $content) { __typename }
}
"""


async def graphql_follow(
    server: Any, conversation_id: int, token: str, plan: str, rng: random.Random, start: str
) -> Rebuilt:
    client = Rebuilt(strict=True)
    dropper = Dropper(plan, rng)
    position: str | None = start
    sent = False
    while True:
        socket = await graphql_socket(server, token)
        variables = {"id": str(conversation_id), "after": position}
        await socket.send(
            json.dumps(
                {
                    "id": "e",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIPTION, "variables": variables},
                }
            )
        )
        first = await recv_json(socket)
        assert first["type"] == "next", first
        if not sent:
            sent = True
            # Over HTTP, as a web app sends; the subscription listens already.
            sending = asyncio.ensure_future(send_graphql(server, token, conversation_id, plan))
        dropped = False
        try:
            while not dropped:
                try:
                    frame = await recv_json(socket, timeout=1.5 if turn_done(client) else 20)
                except TimeoutError:
                    assert turn_done(client), "the stream went silent before the end"
                    break
                if frame.get("id") != "e":
                    continue
                assert frame["type"] == "next", frame
                event = from_graphql(frame["payload"]["data"]["conversationEvents"])
                client.apply(event)
                position = client.position()
                dropped = dropper.after(event, client)
        finally:
            socket.transport.abort()
        if turn_done(client) and not dropped:
            await sending
            return client


async def send_graphql(server: Any, token: str, conversation_id: int, content: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{server.url}/graphql/",
            json={"query": SEND, "variables": {"id": str(conversation_id), "content": content}},
            headers=auth(token),
        )
        assert response.status_code == 200 and "errors" not in response.json(), response.text


async def test_graphql_subscription_drops_rebuild_the_stored_text(
    live_server_factory, llm, assistant_conversation, token
):
    server = live_server_factory()
    rng = random.Random(SEED + 1)
    last = await sync_to_async(last_message_id)(assistant_conversation.pk)
    for plan in PLANS:
        script_turn(llm)
        client = await graphql_follow(
            server, assistant_conversation.pk, token, plan, rng, start=str(last)
        )
        await check_stored_turn(
            assistant_conversation.pk, client, f"GraphQL plan={plan} seed={SEED + 1}"
        )
        last = max(client.texts)


def last_message_id(conversation_id: int) -> int:
    from conversations.models import ConversationMessage

    row = (
        ConversationMessage.objects.filter(conversation_id=conversation_id).order_by("-id").first()
    )
    return row.id if row else 0


# --- websocket ---------------------------------------------------------------------------


async def websocket_follow(
    server: Any, conversation_id: int, token: str, plan: str, rng: random.Random, start: int
) -> Rebuilt:
    client = Rebuilt(strict=False)
    dropper = Dropper(plan, rng)
    sent = False
    after = start
    while True:
        socket, _ = await chat_socket(server, conversation_id, token)
        if not sent:
            sent = True
            await socket.send(json.dumps({"type": "message", "content": plan}))
        else:
            await socket.send(json.dumps({"type": "resume", "after_id": after}))
        dropped = False
        try:
            while not dropped:
                try:
                    frame = await recv_json(socket, timeout=1.5 if turn_done(client) else 20)
                except TimeoutError:
                    assert turn_done(client), "the stream went silent before the end"
                    break
                if not frame["type"].startswith("message."):
                    continue
                client.apply(frame)
                after = client.whole_through()
                dropped = dropper.after(frame, client)
        finally:
            socket.transport.abort()
        if turn_done(client) and not dropped:
            return client


async def test_websocket_drops_rebuild_the_stored_text(
    live_server_factory, llm, assistant_conversation, token
):
    server = live_server_factory()
    rng = random.Random(SEED + 2)
    last = await sync_to_async(last_message_id)(assistant_conversation.pk)
    for plan in PLANS:
        script_turn(llm)
        client = await websocket_follow(server, assistant_conversation.pk, token, plan, rng, last)
        await check_stored_turn(
            assistant_conversation.pk, client, f"websocket plan={plan} seed={SEED + 2}"
        )
        last = max(client.texts)
