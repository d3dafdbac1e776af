"""Response amplification: a cost limit that multiplies page sizes through aliases,
fragments and nesting, refused before anything runs, and a bound on response size.

The attack that found it (issue 14, finding 4): 30 aliases of
`messages(last: 200) { nodes { text content } }`, a 2 kB document inside every
document limit, answered 386 MB.
"""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Conversation
from tests.support.graphql import CONVERSATIONS, MESSAGES, GraphQLSocket, db, error_codes
from tests.support.turns import QueryLog

pytestmark = pytest.mark.django_db(transaction=True)


def aliased_pages(conversation_id: int, aliases: int = 30, last: int = 200) -> str:
    fields = " ".join(
        f"p{i}: messages(conversationId: {conversation_id}, last: {last}) "
        "{ nodes { text content } }"
        for i in range(aliases)
    )
    return "{ " + fields + " }"


def cost_error(body: dict) -> dict:
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_COST_EXCEEDED", error
    return error


def fill(conversation, count: int, text: str = "x") -> None:
    for i in range(count):
        message = HumanMessage(f"{text}{i}") if i % 2 == 0 else AIMessage(f"{text}{i}")
        services.append_message(conversation=conversation, message=message)


async def test_the_reported_document_is_refused_before_anything_runs(gql, token, conversation):
    await db(fill, conversation, 4)
    query = aliased_pages(conversation.pk)
    assert len(query) < 3_000
    with QueryLog() as queries:
        body = await gql.execute(query, token=token)
    error = cost_error(body)
    assert error["message"] == (
        "This operation could return 12000 objects; the limit is 2000. Ask for smaller "
        "pages (first/last) or fewer fields."
    )
    assert error["extensions"] == {
        "code": "QUERY_COST_EXCEEDED",
        "type": "invalid_request",
        "cost": 12000,
        "maxCost": 2000,
    }
    assert queries.containing("conversations_conversationmessage") == []


COSTS = [
    # (document, variables, cost). Scalars are free; each object costs 1 per time it can
    # appear; a connection costs its page size (the rows it loads), and its edges and
    # nodes appear once per row.
    ("{ me { id username } }", {}, 1),
    ("{ __typename agents { slug contextVariables { name } } }", {}, 2),
    ("query($id: ID!) { messages(conversationId: $id, last: 200) { nodes { text } } }", {}, 400),
    (
        "query($id: ID!) { messages(conversationId: $id, first: 20) "
        "{ edges { cursor node { id } } pageInfo { hasNextPage } totalCount } }",
        {},
        20 + 20 + 20 + 1,
    ),
    # Variables, and a variable's default value.
    (
        "query($id: ID!, $n: Int) { messages(conversationId: $id, last: $n) { nodes { id } } }",
        {"n": 150},
        300,
    ),
    (
        "query($id: ID!, $n: Int = 120) "
        "{ messages(conversationId: $id, last: $n) { nodes { id } } }",
        {},
        240,
    ),
    # Fields merge as the executor merges them: a fragment spread twice in one selection,
    # or a field repeated under the same name, is in the answer once.
    ("{ ...Me ...Me me { id } } fragment Me on Query { me { username } }", {}, 1),
    # Aliases count each time, and a fragment in each selection it is spread in.
    (
        "query($id: ID!) { a: messages(conversationId: $id, last: 100) { ...Page } "
        "b: messages(conversationId: $id, last: 100) { ...Page ...Page2 } } "
        "fragment Page on MessageConnection { nodes { id } } "
        "fragment Page2 on MessageConnection { again: nodes { id } edges { node { id } } }",
        {},
        (100 + 100) + (100 + 100 + 100 + 100 + 100),
    ),
    # Objects nested in a page count once per row: rows + (edge, node, agent, lastMessage).
    (
        "{ conversations(first: 200) { edges { node { agent { slug } lastMessage { id } } } } }",
        {},
        200 + 200 * 4,
    ),
    # No page size: CONFAB_DEFAULT_PAGE_SIZE (50); beyond CONFAB_MAX_PAGE_SIZE: 200 (the
    # resolver refuses such a page, but never after loading more than that).
    ("{ conversations { nodes { id } } }", {}, 100),
    ("{ conversations(first: 100000) { nodes { id } } }", {}, 400),
    # Inline fragments count like the fields they hold; a list outside a page once.
    (
        'mutation { createConversation(agent: "plain") '
        "{ conversation { ... on Conversation { id agent { slug } } } errors { code } } }",
        {},
        1 + 1 + 1 + 1,
    ),
]


@pytest.mark.parametrize(("document", "variables", "cost"), COSTS)
async def test_the_cost_of_a_document(
    gql, token, conversation, settings, document, variables, cost
):
    """Each cost above, read from the refusal with the limit one below it; at the limit the
    same document runs."""
    variables = {"id": conversation.pk, **variables} if "$id" in document else variables
    settings.CONFAB_GRAPHQL_MAX_COST = cost - 1
    error = cost_error(await gql.execute(document, variables or None, token=token))
    assert error["extensions"]["cost"] == cost
    settings.CONFAB_GRAPHQL_MAX_COST = cost
    body = await gql.execute(document, variables or None, token=token)
    assert error_codes(body) in ([], ["VALIDATION_ERROR"]), body  # first: 100000 is refused


async def test_the_web_apps_queries_at_the_largest_page_pass(gql, token, conversation):
    """Every field the web app asks for, at CONFAB_MAX_PAGE_SIZE: well under the limit."""
    await db(fill, conversation, 3)
    data = await gql.data(CONVERSATIONS, {"first": 200}, token=token)
    assert len(data["conversations"]["edges"]) == 1
    data = await gql.data(MESSAGES, {"id": conversation.pk, "last": 200}, token=token)
    assert len(data["messages"]["edges"]) == 3


async def test_the_limit_is_a_setting(gql, token, conversation, settings):
    query = aliased_pages(conversation.pk, aliases=3, last=10)  # 3 x (10 + 10) = 60
    assert "errors" not in await gql.execute(query, token=token)
    settings.CONFAB_GRAPHQL_MAX_COST = 59
    assert cost_error(await gql.execute(query, token=token))["extensions"] == {
        "code": "QUERY_COST_EXCEEDED",
        "type": "invalid_request",
        "cost": 60,
        "maxCost": 59,
    }


async def test_mutations_are_costed_too(gql, token, conversation, settings):
    """A mutation's payload can hold pages as well (the conversation's last message):
    costed the same way, and refused before any mutation runs."""
    settings.CONFAB_GRAPHQL_MAX_COST = 5
    fields = " ".join(
        f'c{i}: createConversation(agent: "plain") {{ conversation {{ id agent {{ slug }} }} }}'
        for i in range(3)
    )  # 3 x (payload, conversation, agent) = 9
    body = await gql.execute("mutation { " + fields + " }", token=token)
    assert cost_error(body)["extensions"]["cost"] == 9
    assert await Conversation.objects.filter(user_id=conversation.user_id).acount() == 1


async def test_the_websocket_refuses_the_same_document(token, conversation):
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("costly", aliased_pages(conversation.pk))
    message = await socket.receive()
    assert message["type"] == "error" and message["id"] == "costly", message
    [error] = message["payload"]
    assert error["extensions"]["code"] == "QUERY_COST_EXCEEDED"
    await socket.close()


# --- the response size ---------------------------------------------------------------


async def test_a_response_over_the_size_limit_is_refused(gql, token, conversation, settings):
    await db(fill, conversation, 20, text="y" * 1000)  # about 40 kB of text and content
    settings.CONFAB_GRAPHQL_MAX_RESPONSE_BYTES = 30_000
    query = (
        "query($id: ID!, $n: Int) "
        "{ messages(conversationId: $id, last: $n) { nodes { text content } } }"
    )
    body = await gql.execute(query, {"id": conversation.pk, "n": 20}, token=token)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {
        "code": "RESPONSE_TOO_LARGE",
        "type": "invalid_request",
        "maxBytes": 30_000,
    }
    assert "larger than 30000 bytes" in error["message"]
    # Smaller pages pass.
    data = await gql.data(query, {"id": conversation.pk, "n": 5}, token=token)
    assert len(data["messages"]["nodes"]) == 5


async def test_non_ascii_text_counts_as_sent(gql, token, conversation, settings):
    """JSON on the wire escapes every non-ASCII character (`\\uXXXX`, 6 bytes): a page of
    Korean text is measured as sent, not by its characters (about 11,000 here)."""
    await db(fill, conversation, 10, text="가" * 500)
    query = "query($id: ID!) { messages(conversationId: $id, last: 10) { nodes { text content } } }"
    sent = await gql.post(query, {"id": conversation.pk}, token=token)
    assert 60_000 < len(sent.content) < 70_000
    settings.CONFAB_GRAPHQL_MAX_RESPONSE_BYTES = 40_000
    body = await gql.execute(query, {"id": conversation.pk}, token=token)
    assert error_codes(body) == ["RESPONSE_TOO_LARGE"]


async def test_the_websocket_bounds_responses_too(token, conversation, settings):
    await db(fill, conversation, 20, text="z" * 1000)
    settings.CONFAB_GRAPHQL_MAX_RESPONSE_BYTES = 30_000
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe(
        "big",
        "query($id: ID!) { messages(conversationId: $id, last: 20) { nodes { text content } } }",
        {"id": conversation.pk},
    )
    message = await socket.receive()
    assert message["id"] == "big", message
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["RESPONSE_TOO_LARGE"]
    assert message["payload"]["data"] is None
    await socket.close()
