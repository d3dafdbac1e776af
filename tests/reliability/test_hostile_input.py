"""Hostile input the surface-level limit tests do not cover, refused fast and cleanly.

tests/api/graphql/test_limits.py covers deep selections, aliases, token counts,
document and body sizes, batches and page sizes; tests/conversations/
test_frames.py fuzzes the chat frame parser. Here: JSON nested deeper than
Python's recursion limit (a 200 kB body of brackets, which crashed the REST
parser and the GraphQL view with a 500), huge lists in variables and bodies,
fragment cycles, fragment "bombs" (which made the depth and alias limits
exponential), directive floods — on every surface that parses JSON or
GraphQL. Each answer is a 4xx (or an error frame) in the surface's error shape
within a second, and the socket that received it keeps working.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from channels.testing import WebsocketCommunicator

from backend.asgi import application
from tests.support.graphql import GraphQLSocket

pytestmark = pytest.mark.django_db(transaction=True)

FAST = 1.0
DEEP = "[" * 100_000 + "]" * 100_000  # 200 kB, under the 256 kB body limit
DEEP_FRAME = "[" * 30_000 + "]" * 30_000  # 60 kB, under the 64 kB frame limit
CREATE = (
    'mutation($c: JSON) { createConversation(agent: "plain", context: $c) { errors { code } } }'
)


async def timed(coro: Any) -> Any:
    started = time.monotonic()
    result = await coro
    assert time.monotonic() - started < FAST, f"took {time.monotonic() - started:.2f}s"
    return result


@pytest.fixture
async def client(token):
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    ) as http:
        yield http


async def test_deeply_nested_json_bodies_are_malformed_not_server_errors(
    client, conversation, plain_agent
):
    for path in (
        "/api/v1/conversations/",
        f"/api/v1/conversations/{conversation.pk}/",
        f"/api/v1/conversations/{conversation.pk}/messages/",
        "/api/v1/auth/token/",
    ):
        method = "PATCH" if path.endswith(f"{conversation.pk}/") else "POST"
        response = await timed(client.request(method, path, content=DEEP))
        assert response.status_code == 400, (path, response.text)
        assert response.json()["code"] == "MALFORMED_JSON"
    for body in (DEEP, '{"query": ' + json.dumps(CREATE) + ', "variables": {"c": ' + DEEP + "}}"):
        response = await timed(client.post("/graphql/", content=body))
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_huge_lists_are_refused_by_validation(client, conversation, plain_agent):
    items = list(range(30_000))  # about 200 kB: under the body limit
    body = {"query": CREATE, "variables": {"c": items}}
    data = (await timed(client.post("/graphql/", json=body))).json()["data"]
    assert data["createConversation"]["errors"] == [{"code": "invalid"}]
    response = await timed(
        client.post("/api/v1/conversations/", json={"agent": "plain", "context": items})
    )
    assert response.status_code == 400 and response.json()["fields"]["context"]
    response = await timed(
        client.post(f"/api/v1/conversations/{conversation.pk}/messages/", json={"content": items})
    )
    assert response.status_code == 400 and response.json()["fields"]["content"]
    # A list literal in the document hits the token limit before anything runs.
    literal = "[" + ",".join("1" for _ in range(5_000)) + "]"
    query = CREATE.replace("($c: JSON)", "").replace("$c", literal)
    body = (await timed(client.post("/graphql/", json={"query": query}))).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_fragment_cycles_and_directive_floods(client):
    cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { me { id } ...A }"
    body = (await timed(client.post("/graphql/", json={"query": cycle}))).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    flood = "{ me " + "@include(if: true) " * 600 + "{ id } }"
    body = (await timed(client.post("/graphql/", json={"query": flood}))).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    # 40 fragments, each spreading the previous one twice: 2^40 fields if expanded. The
    # depth and alias limits used to expand them (seconds of CPU per kB); execution
    # merges the fields, so the answer is one `me`.
    fragments = ["fragment F0 on Query { me { id username } }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 40)
    ]
    bomb = "query { ...F39 } " + " ".join(fragments)
    body = (await timed(client.post("/graphql/", json={"query": bomb}))).json()
    assert body == {"data": {"me": {"id": body["data"]["me"]["id"], "username": "alice"}}}


async def test_deeply_nested_websocket_frames(token, conversation):
    # GraphQL: the protocol's "invalid message" close, not a crashed consumer.
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.communicator.send_to(text_data=DEEP_FRAME)
    assert await socket.closed_with() == 4400
    # Chat: an error frame, and the socket stays usable.
    chat = WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation.pk}/",
        headers=[(b"authorization", f"Bearer {token}".encode())],
    )
    connected, _ = await chat.connect()
    assert connected
    assert (await chat.receive_json_from())["type"] == "ready"
    await chat.send_to(text_data=DEEP_FRAME)
    assert (await chat.receive_json_from())["code"] == "INVALID_JSON"
    await chat.send_to(text_data=json.dumps({"type": "ping"}))
    assert await chat.receive_json_from() == {"type": "pong"}
    await chat.disconnect()


async def test_aliases_behind_fragments_still_count(client):
    fragments = ["fragment F0 on Query { a: me { id } b: me { id } }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 30)
    ]
    bomb = "query { ...F29 } " + " ".join(fragments)
    body = (await timed(client.post("/graphql/", json={"query": bomb}))).json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == f"{2**30} aliases found. Allowed: 30"
    nested = ["fragment D0 on Conversation { id }"] + [
        f"fragment D{i} on Conversation {{ lastMessage {{ id }} ...D{i - 1} ...D{i - 1} }}"
        for i in range(1, 30)
    ]
    deep = "query Deep { conversations { edges { node { ...D29 } } } } " + " ".join(nested)
    body = (await timed(client.post("/graphql/", json={"query": deep}))).json()
    assert body["data"]["conversations"]["edges"] == []  # depth 4: allowed, and fast


AGREEMENT_DOCUMENTS = [
    "{ me { id } }",
    "query Q { a: me { id } b: me { username } conversations { edges { node { id } } } }",
    "query Q { ...F } fragment F on Query { x: me { id } ...G } "
    "fragment G on Query { y: me { id } }",
    "query Q { conversations { edges { node { ...C } } } } "
    "fragment C on Conversation { lastMessage { id } agent { slug } ... on Conversation { id } }",
    "query A { me { id } } query B { m: me { id } conversations { edges { cursor } } }",
    "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }",
    "query Q { ...F1 } fragment F0 on Query { me { id } } "
    "fragment F1 on Query { ...F0 ...F0 c: conversations { totalCount } }",
]


@pytest.mark.parametrize("document", AGREEMENT_DOCUMENTS)
@pytest.mark.parametrize("limit", [0, 1, 2, 3, 10])
def test_linear_limits_agree_with_strawberrys(document, limit):
    from graphql import parse, validate
    from strawberry.extensions.max_aliases import create_validator as strawberry_aliases
    from strawberry.extensions.query_depth_limiter import create_validator as strawberry_depth

    from api.graphql.schema import schema
    from api.graphql.validation_rules import alias_rule, depth_rule

    def messages(rule: Any) -> set[str]:
        return {error.message for error in validate(schema._schema, parse(document), [rule])}

    assert messages(depth_rule(limit)) == messages(strawberry_depth(limit, None, None))
    assert messages(alias_rule(limit)) == messages(strawberry_aliases(limit))
