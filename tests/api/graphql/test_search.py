"""Search over GraphQL: the REST shape, the same pages."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from conversations import services
from tests.support.graphql import db, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

SEARCH = """
query($q: String!, $first: Int, $after: String, $role: String) {
  search(query: $q, first: $first, after: $after, role: $role) {
    results { conversation { id title } message { id text feedback { rating } } snippet }
    nextCursor hasMore
  }
}
"""


async def test_search_pages_like_rest(gql, token, other_token, user, conversation):
    ids = []
    for count in (1, 3, 2):
        message = await db(
            services.append_message,
            conversation=conversation,
            message=HumanMessage(" ".join(["커피"] * count) + " 주세요"),
        )
        ids.append(message.pk)
    seen, after = [], None
    while True:
        page = (await gql.data(SEARCH, {"q": "커피", "first": 1, "after": after}, token=token))[
            "search"
        ]
        seen += [int(r["message"]["id"]) for r in page["results"]]
        if not page["hasMore"]:
            break
        after = page["nextCursor"]
    assert seen == [ids[1], ids[2], ids[0]]
    first = (await gql.data(SEARCH, {"q": "커피"}, token=token))["search"]["results"][0]
    assert first["conversation"] == {"id": str(conversation.pk), "title": conversation.title}
    assert first["snippet"].startswith("<mark>커피</mark>")
    assert (await gql.data(SEARCH, {"q": "커피"}, token=other_token))["search"]["results"] == []
    body = await gql.execute(SEARCH, {"q": "커피", "role": "robot"}, token=token)
    assert error_codes(body) == ["VALIDATION_ERROR"]


async def test_search_errors_name_the_graphql_arguments(gql, token):
    body = await gql.execute(SEARCH, {"q": "   "}, token=token)
    assert error_codes(body) == ["VALIDATION_ERROR"]
    assert body["errors"][0]["extensions"]["fields"] == [
        {"field": "query", "code": "required", "message": "query is required."}
    ]
    body = await gql.execute(SEARCH, {"q": "x", "after": "not-a-cursor"}, token=token)
    assert body["errors"][0]["extensions"]["fields"][0]["field"] == "after"
