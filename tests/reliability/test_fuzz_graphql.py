"""Generated GraphQL documents against a live server: never a server error.

hypothesis-graphql builds queries and mutations from the schema, valid ones
and ones with a single violation, as a signed-in user with history. Every
answer is a 200 (or 4xx) JSON body in the GraphQL shape, and no error is
`INTERNAL_SERVER_ERROR`: bad arguments, unknown ids and broken documents are
the client's errors, each with its code.
"""

from __future__ import annotations

from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries
from langchain_core.messages import AIMessage, HumanMessage

from api.graphql.schema import schema
from conversations import services

pytestmark = pytest.mark.django_db(transaction=True)

UNTHROTTLED = {"CONFAB_THROTTLE_TURNS": "100000/min", "CONFAB_THROTTLE_USER": "100000/min"}
JSON_NODES = st.sampled_from(
    [
        graphql.ObjectValueNode(fields=()),
        graphql.StringValueNode(value="x"),
        graphql.IntValueNode(value="1"),
        graphql.ListValueNode(values=()),
        graphql.NullValueNode(),
    ]
)
IDS = st.sampled_from(["1", "2", "-1", "0", "abc", "99999999999999999999", ""]).map(
    lambda value: graphql.StringValueNode(value=value)
)
SCALARS = {"JSON": JSON_NODES, "ID": IDS}


def documents(mode: Mode) -> st.SearchStrategy[str]:
    sdl = str(schema)
    options: dict[str, Any] = {"custom_scalars": SCALARS, "mode": mode, "allow_x00": False}
    return queries(sdl, **options) | mutations(sdl, **options)


def test_generated_documents_never_fail_the_server(live_server_factory, llm, conversation, token):
    server = live_server_factory(extra_env=UNTHROTTLED)
    services.append_message(conversation=conversation, message=HumanMessage("hi"))
    services.append_message(conversation=conversation, message=AIMessage("hello"))
    client = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    statuses: dict[int, int] = {}

    def check(document: str) -> None:
        response = client.post("/graphql/", json={"query": document})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (document, response.text)
        body = response.json()
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
        assert "INTERNAL_SERVER_ERROR" not in codes, (document, body)
        assert all(codes), (document, body)  # every error has its code

    for mode in (Mode.POSITIVE, Mode.NEGATIVE):

        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(document=documents(mode))
        def run(document: str) -> None:
            check(document)

        run()
    client.close()
    assert statuses.get(200, 0) >= 100, statuses
