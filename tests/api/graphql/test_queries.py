"""Queries through the HTTP view: me, agents, conversations, conversation, messages."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Conversation
from tests.support.graphql import (
    CONVERSATION_FIELDS,
    CONVERSATIONS,
    MESSAGE_FIELDS,
    MESSAGES,
    db,
    error_codes,
)
from tests.support.turns import QueryLog

pytestmark = pytest.mark.django_db(transaction=True)


def fill(conversation: Conversation, count: int) -> list[int]:
    """`count` stored messages, alternating human and AI; their ids."""
    ids = []
    for i in range(count):
        message = HumanMessage(f"q{i}") if i % 2 == 0 else AIMessage(f"a{i}")
        ids.append(services.append_message(conversation=conversation, message=message).id)
    return ids


def node_ids(connection: dict[str, Any]) -> list[int]:
    return [int(edge["node"]["id"]) for edge in connection["edges"]]


async def test_me(gql, user, token):
    data = await gql.data("{ me { id username } }", token=token)
    assert data == {"me": {"id": str(user.pk), "username": "alice"}}


async def test_agents_expose_their_variables_not_their_prompts(gql, token, tutor, assistant):
    data = await gql.data(
        "{ agents { slug name description model tools "
        "contextVariables { name default description } } }",
        token=token,
    )
    agents = {agent["slug"]: agent for agent in data["agents"]}
    assert set(agents) == {"language-tutor", "assistant"}
    variables = {v["name"]: v for v in agents["language-tutor"]["contextVariables"]}
    assert set(variables) == {"언어", "상황", "레벨"}
    assert variables["언어"] == {
        "name": "언어",
        "default": "중국어",
        "description": "The language to practise.",
    }
    assert agents["assistant"]["tools"] == [
        "calculator",
        "current_time",
        "multiplication_table",
        "bar_chart",
    ]
    body = await gql.execute("{ agents { systemPromptTemplate } }", token=token)
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_conversation_fields_match_the_stored_row(gql, token, tutor_conversation):
    _, ai = await db(fill, tutor_conversation, 2)
    data = await gql.data(
        f"query($id: ID!) {{ conversation(id: $id) {{ {CONVERSATION_FIELDS} }} }}",
        {"id": tutor_conversation.pk},
        token=token,
    )
    conversation = data["conversation"]
    assert conversation["id"] == str(tutor_conversation.pk)
    assert conversation["title"] == "Tutor chat"
    assert conversation["agent"] == {"slug": "language-tutor", "name": "Language tutor"}
    assert conversation["context"]["언어"] == "중국어"
    assert conversation["archived"] is False and conversation["archivedAt"] is None
    assert conversation["messageCount"] == 2
    assert conversation["activeTurnId"] is None
    last = conversation["lastMessage"]
    assert last["id"] == str(ai) and last["conversationId"] == str(tutor_conversation.pk)
    assert last["role"] == "AI" and last["status"] == "COMPLETE" and last["text"] == "a1"
    assert last["content"]["_type"] == "AIMessage"


async def test_conversation_list_pages_newest_activity_first(gql, token, user, plain_agent):
    created = await db(
        lambda: [
            services.create_conversation(user=user, agent=plain_agent, title=f"c{i}").pk
            for i in range(5)
        ]
    )
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        data = await gql.data(CONVERSATIONS, {"first": 2, "after": after}, token=token)
        connection = data["conversations"]
        seen += node_ids(connection)
        info = connection["pageInfo"]
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
        assert info["hasPreviousPage"] is (after is not None)
        pages += 1
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert pages == 3
    assert seen == list(reversed(created))

    data = await gql.data("{ conversations(first: 1) { totalCount nodes { id } } }", token=token)
    assert data["conversations"]["totalCount"] == 5
    assert data["conversations"]["nodes"] == [{"id": str(created[-1])}]


async def test_conversation_filters(gql, token, user, plain_agent, tutor):
    def make() -> dict[str, int]:
        ids = {
            "plain": services.create_conversation(user=user, agent=plain_agent, title="Groceries"),
            "tutor": services.create_conversation(user=user, agent=tutor, title="Spanish class"),
            "old": services.create_conversation(user=user, agent=plain_agent, title="Old stuff"),
        }
        services.set_archived(conversation=ids["old"], archived=True)
        return {name: conversation.pk for name, conversation in ids.items()}

    ids = await db(make)

    async def listed(**variables: Any) -> set[int]:
        data = await gql.data(CONVERSATIONS, variables, token=token)
        return set(node_ids(data["conversations"]))

    assert await listed() == set(ids.values())
    assert await listed(archived=True) == {ids["old"]}
    assert await listed(archived=False) == {ids["plain"], ids["tutor"]}
    assert await listed(agent="language-tutor") == {ids["tutor"]}
    assert await listed(search="spanish") == {ids["tutor"]}
    count = await gql.data("{ conversations(archived: false) { totalCount } }", token=token)
    assert count["conversations"]["totalCount"] == 2


async def test_messages_default_is_the_newest_page_oldest_first(gql, token, conversation):
    ids = await db(fill, conversation, 7)
    data = await gql.data(MESSAGES, {"id": conversation.pk, "last": 3}, token=token)
    connection = data["messages"]
    assert node_ids(connection) == ids[-3:]
    assert connection["pageInfo"]["hasPreviousPage"] is True
    assert connection["pageInfo"]["hasNextPage"] is False
    default = await gql.data(MESSAGES, {"id": conversation.pk}, token=token)
    assert node_ids(default["messages"]) == ids
    node = default["messages"]["edges"][0]["node"]
    assert node["role"] == "HUMAN" and node["text"] == "q0"
    assert node["content"] == {
        "_type": "HumanMessage",
        "_value": node["content"]["_value"],
    }


async def test_messages_walk_back_with_last_before_and_forward_with_first_after(
    gql, token, conversation
):
    ids = await db(fill, conversation, 11)
    seen: list[int] = []
    variables: dict[str, Any] = {"id": conversation.pk, "last": 4}
    while True:
        connection = (await gql.data(MESSAGES, variables, token=token))["messages"]
        seen = node_ids(connection) + seen
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        variables = {
            "id": conversation.pk,
            "last": 4,
            "before": connection["pageInfo"]["startCursor"],
        }
    assert seen == ids

    seen = []
    variables = {"id": conversation.pk, "first": 4}
    while True:
        connection = (await gql.data(MESSAGES, variables, token=token))["messages"]
        seen += node_ids(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        assert connection["pageInfo"]["hasPreviousPage"] is (len(seen) > 4)
        variables = {
            "id": conversation.pk,
            "first": 4,
            "after": connection["pageInfo"]["endCursor"],
        }
    assert seen == ids

    data = await gql.data(
        "query($id: ID!) { messages(conversationId: $id, first: 2) { totalCount } }",
        {"id": conversation.pk},
        token=token,
    )
    assert data["messages"]["totalCount"] == 11


async def test_message_cursors_are_opaque_strings(gql, token, conversation):
    ids = await db(fill, conversation, 2)
    data = await gql.data(MESSAGES, {"id": conversation.pk}, token=token)
    cursors = [edge["cursor"] for edge in data["messages"]["edges"]]
    assert all(isinstance(cursor, str) for cursor in cursors)
    assert [str(i) for i in ids] != cursors


async def test_history_pages_run_a_constant_number_of_queries_without_count_or_offset(
    gql, token, conversation
):
    await db(fill, conversation, 30)
    counts = []
    for variables in (
        {"last": 5},
        {"last": 5, "before": None},
        {"first": 5},
    ):
        with QueryLog() as queries:
            data = await gql.data(MESSAGES, {"id": conversation.pk, **variables}, token=token)
        assert data["messages"]["edges"]
        assert not queries.containing("COUNT(") and not queries.containing("OFFSET")
        counts.append(len(queries))
    assert max(counts) <= 5, counts


@pytest.mark.parametrize(
    ("variables", "field", "code"),
    [
        ({"first": 201}, "first", "out_of_range"),
        ({"last": 0}, "last", "out_of_range"),
        ({"last": 100000000}, "last", "out_of_range"),
        ({"after": "bm90LWEtY3Vyc29y"}, "after", "invalid"),
        ({"before": "!!!"}, "before", "invalid"),
        ({"first": 2, "before": None, "last": 2}, "last", "exclusive"),
        ({"after": None, "first": 1, "before": "x"}, "before", "exclusive"),
    ],
)
async def test_message_page_arguments_are_validated(
    gql, token, conversation, variables, field, code
):
    body = await gql.execute(MESSAGES, {"id": conversation.pk, **variables}, token=token)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert error["extensions"]["fields"][0]["field"] == field
    assert error["extensions"]["fields"][0]["code"] == code


async def test_max_page_size_error_is_clear(gql, token, settings):
    settings.CONFAB_MAX_PAGE_SIZE = 50
    body = await gql.execute("{ conversations(first: 51) { totalCount } }", token=token)
    [error] = body["errors"]
    assert error["message"] == "first must be between 1 and 50."
    assert error["extensions"] == {
        "code": "VALIDATION_ERROR",
        "type": "invalid_request",
        "fields": [
            {"field": "first", "code": "out_of_range", "message": "first must be between 1 and 50."}
        ],
    }
    assert error["path"] == ["conversations"]


async def test_bad_conversation_cursor_and_search(gql, token):
    body = await gql.execute('{ conversations(after: "nope") { totalCount } }', token=token)
    assert body["errors"][0]["extensions"]["fields"][0]["field"] == "after"
    body = await gql.execute(
        "query($s: String) { conversations(search: $s) { totalCount } }",
        {"s": "x" * 201},
        token=token,
    )
    assert body["errors"][0]["extensions"]["fields"][0] == {
        "field": "search",
        "code": "too_long",
        "message": "search is longer than 200 characters.",
    }


@pytest.mark.parametrize("bad_id", ["0", "-1", "abc", "99999999", "9" * 40])
async def test_unknown_conversation_is_not_found(gql, token, bad_id):
    body = await gql.execute(
        "query($id: ID!) { conversation(id: $id) { id } }", {"id": bad_id}, token=token
    )
    assert body["data"] is None
    assert error_codes(body) == ["NOT_FOUND"]
    assert body["errors"][0]["extensions"]["type"] == "not_found"


async def test_conversation_list_is_a_constant_number_of_queries(gql, token, user, plain_agent):
    """No N+1: a page with agents and last messages costs the same for 2 and 20 rows."""

    def make(count: int) -> None:
        for i in range(count):
            conversation = services.create_conversation(user=user, agent=plain_agent, title=f"c{i}")
            services.append_message(conversation=conversation, message=HumanMessage(f"m{i}"))

    query = (
        "{ conversations(first: 50) { edges { cursor node { id title "
        "agent { slug name tools contextVariables { name } } "
        f"lastMessage {{ {MESSAGE_FIELDS} }} }} }} pageInfo {{ hasNextPage }} }} }}"
    )
    counts = []
    await gql.data("{ me { id } }", token=token)  # the token's first use writes last_used_at
    for count in (2, 18):
        await db(make, count)
        with QueryLog() as queries:
            data = await gql.data(query, token=token)
        assert all(edge["node"]["lastMessage"] for edge in data["conversations"]["edges"])
        counts.append((len(data["conversations"]["edges"]), len(queries)))
    (rows_small, queries_small), (rows_large, queries_large) = counts
    assert (rows_small, rows_large) == (2, 20)
    assert queries_small == queries_large, counts
    assert 0 < queries_large <= 6, counts
