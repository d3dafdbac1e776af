"""Hostile documents are refused fast, with a clear error: depth, aliases, tokens, size,
batches, huge pages, introspection."""

from __future__ import annotations

import time

import pytest

from tests.support.graphql import GraphQLSocket, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

FAST = 1.0  # seconds; each refusal takes milliseconds


def nested(depth: int) -> str:
    """`{ conversations { edges { node { ... } } } }`-like nesting `depth` levels deep."""
    return "query Deep " + "{ conversations " * 1 + "{ a " * (depth - 1) + "}" * depth


async def timed(coro):
    started = time.monotonic()
    result = await coro
    elapsed = time.monotonic() - started
    assert elapsed < FAST, f"took {elapsed:.2f}s"
    return result


async def test_deep_nesting_is_refused(gql, token):
    body = await timed(gql.execute(nested(60), token=token))
    assert body["data"] is None
    messages = [error["message"] for error in body["errors"]]
    assert "'Deep' exceeds maximum operation depth of 10" in messages
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}


async def test_depth_limit_is_a_setting(gql, token, settings):
    query = "{ conversations { edges { node { lastMessage { id } } } } }"
    assert "errors" not in await gql.execute(query, token=token)
    settings.CONFAB_GRAPHQL_MAX_DEPTH = 3
    body = await gql.execute(query, token=token)
    assert "exceeds maximum operation depth of 3" in body["errors"][0]["message"]


async def test_too_many_aliases_are_refused(gql, token):
    query = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(31)) + " }"
    body = await timed(gql.execute(query, token=token))
    assert body["data"] is None
    assert body["errors"][0]["message"] == "31 aliases found. Allowed: 30"
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    allowed = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(30)) + " }"
    assert "errors" not in await gql.execute(allowed, token=token)


async def test_a_thousand_aliases_stop_the_parser(gql, token):
    query = "{" + " ".join(f"a{i}:me{{id}}" for i in range(1000)) + "}"
    body = await timed(gql.execute(query, token=token))
    assert body["data"] is None
    [error] = body["errors"]
    assert "more than 2000 tokens" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_a_one_megabyte_document_is_refused_before_parsing(gql, token):
    query = "{ me { id } }" + " " * 1_000_000
    response = await timed(gql.post(query, token=token))
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"


async def test_a_long_document_under_the_body_limit_is_refused(gql, token):
    query = "{ me { id } }" + " " * 40_000
    response = await timed(gql.post(query, token=token))
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error == {
        "message": "The GraphQL document is longer than 32000 characters.",
        "extensions": {"code": "DOCUMENT_TOO_LARGE", "type": "invalid_request"},
    }


async def test_refusals_happen_before_authentication(gql, db):
    response = await gql.post("{ me { id } }" + " " * 1_000_000)
    assert response.status_code == 413


async def test_huge_page_sizes_are_refused(gql, token):
    for first in (201, 10**9, 2**31 - 1):
        body = await timed(
            gql.execute(f"{{ conversations(first: {first}) {{ totalCount }} }}", token=token)
        )
        assert body["errors"][0]["extensions"]["fields"][0]["code"] == "out_of_range"
    body = await gql.execute("{ conversations(first: 99999999999) { totalCount } }", token=token)
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]  # not even an Int


async def test_batches_are_refused(gql, token):
    batch = [{"query": "{ me { id } }"}] * 1000
    response = await timed(
        gql.client.post("/graphql/", json=batch, headers={"Authorization": f"Bearer {token}"})
    )
    assert response.status_code == 400
    assert "Batching is not enabled" in response.json()["errors"][0]["message"]


async def test_introspection_follows_the_setting(gql, token, settings):
    query = "{ __schema { queryType { name } } }"
    settings.CONFAB_GRAPHQL_INTROSPECTION = False
    body = await gql.execute(query, token=token)
    assert body["data"] is None
    assert "introspection" in body["errors"][0]["message"].lower()
    settings.CONFAB_GRAPHQL_INTROSPECTION = True
    body = await gql.execute(query, token=token)
    assert body["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    # __typename is not introspection and always works.
    settings.CONFAB_GRAPHQL_INTROSPECTION = False
    assert (await gql.data("{ __typename }", token=token)) == {"__typename": "Query"}


async def test_websocket_limits(token, conversation):
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("deep", nested(60))
    message = await socket.receive()
    assert message["type"] == "error" and message["id"] == "deep"
    assert any("maximum operation depth" in e["message"] for e in message["payload"])

    long_document = "subscription { conversationsChanged { __typename } }" + " " * 40_000
    await socket.subscribe("long", long_document)
    message = await socket.receive()
    assert message == {
        "id": "long",
        "type": "error",
        "payload": [
            {
                "message": "The GraphQL document is longer than 32000 characters.",
                "extensions": {"code": "DOCUMENT_TOO_LARGE", "type": "invalid_request"},
            }
        ],
    }
    # The connection is still fine; a frame over CONFAB_WS_MAX_FRAME_BYTES closes it.
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong"}
    await socket.subscribe("huge", "{ me { id } }" + " " * 1_000_000)
    assert await socket.closed_with() == 1009


async def test_websocket_init_timeout(db, settings):
    settings.CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS = 0.2
    socket = GraphQLSocket()
    await socket.open()
    assert await socket.closed_with(timeout=3) == 4408
