"""Another user's conversation is exactly a missing one, on every field, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Conversation, ConversationMessage
from tests.support.graphql import GraphQLSocket, db, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

MISSING_ID = "987654321"

QUERIES = {
    "conversation": "query($id: ID!) { conversation(id: $id) { id title } }",
    "messages": "query($id: ID!) { messages(conversationId: $id) { edges { node { id } } } }",
    "messages_paged": (
        'query($id: ID!) { messages(conversationId: $id, first: 5000, after: "x") '
        "{ edges { node { id } } } }"
    ),
}
MUTATIONS = {
    "updateConversation": (
        'mutation($id: ID!) { updateConversation(id: $id, title: "pwned", context: {}, '
        "archived: true) { conversation { id } errors { code } } }"
    ),
    "updateConversation_bad_input": (
        'mutation($id: ID!) { updateConversation(id: $id, context: {bogus: "1"}) '
        "{ conversation { id } errors { code } } }"
    ),
    "archiveConversation": (
        "mutation($id: ID!) { archiveConversation(id: $id) { conversation { id } } }"
    ),
    "deleteConversation": "mutation($id: ID!) { deleteConversation(id: $id) { deletedId } }",
    "clearConversation": (
        "mutation($id: ID!) { clearConversation(id: $id) { deletedMessageCount } }"
    ),
    "sendMessage": (
        'mutation($id: ID!) { sendMessage(conversationId: $id, content: "hi") '
        "{ humanMessage { id } errors { code } } }"
    ),
    "sendMessage_bad_input": (
        'mutation($id: ID!) { sendMessage(conversationId: $id, content: "  ") '
        "{ humanMessage { id } errors { code } } }"
    ),
    "cancelTurn": "mutation($id: ID!) { cancelTurn(conversationId: $id) { turnId } }",
    "regenerate": "mutation($id: ID!) { regenerate(conversationId: $id) { aiMessage { id } } }",
}


@pytest.fixture
def victim(other_user, plain_agent) -> Conversation:
    """Mallory's conversation, with history, that Alice must not see or touch."""
    conversation = services.create_conversation(user=other_user, agent=plain_agent, title="Secret")
    services.append_message(conversation=conversation, message=HumanMessage("my secret"))
    services.append_message(conversation=conversation, message=AIMessage("noted"))
    return conversation


def snapshot(conversation_id: int) -> dict[str, Any]:
    row = Conversation.objects.get(pk=conversation_id)
    messages = list(
        ConversationMessage.objects.filter(conversation_id=conversation_id)
        .order_by("id")
        .values_list("id", "text", "status")
    )
    return {
        "title": row.title,
        "archived_at": row.archived_at,
        "context": row.context,
        "active_turn_id": row.active_turn_id,
        "messages": messages,
    }


def assert_not_found(body: dict[str, Any], missing: dict[str, Any]) -> None:
    """The same answer as for an id that does not exist."""
    assert body["data"] is None
    assert error_codes(body) == ["NOT_FOUND"]
    assert body == missing


@pytest.mark.parametrize("operation", sorted({**QUERIES, **MUTATIONS}))
async def test_other_users_conversation_is_not_found_and_unchanged(gql, token, victim, operation):
    query = {**QUERIES, **MUTATIONS}[operation]
    before = await db(snapshot, victim.pk)
    missing = await gql.execute(query, {"id": MISSING_ID}, token=token)
    body = await gql.execute(query, {"id": str(victim.pk)}, token=token)
    assert_not_found(body, missing)
    assert await db(snapshot, victim.pk) == before


async def test_other_users_conversations_are_not_listed(gql, token, victim):
    data = await gql.data("{ conversations { totalCount edges { node { id } } } }", token=token)
    assert data["conversations"] == {"totalCount": 0, "edges": []}
    search = await gql.data('{ conversations(search: "Secret") { totalCount } }', token=token)
    assert search["conversations"]["totalCount"] == 0


async def test_other_users_conversation_events_are_not_found(token, victim):
    socket = GraphQLSocket()
    await socket.connect(token)
    subscription = (
        "subscription($id: ID!) { conversationEvents(conversationId: $id) { __typename } }"
    )
    answers = []
    for operation_id, conversation_id in (("missing", MISSING_ID), ("victim", victim.pk)):
        await socket.subscribe(operation_id, subscription, {"id": str(conversation_id)})
        message = await socket.receive()
        assert message["type"] == "error" and message["id"] == operation_id
        answers.append(message["payload"])
    assert answers[0] == answers[1]
    assert answers[1][0]["extensions"]["code"] == "NOT_FOUND"
    await socket.close()


async def test_conversations_changed_carries_only_own_conversations(
    gql, token, other_token, user, other_user, plain_agent
):
    from conversations.events import user_group
    from tests.support.graphql import wait_for_members

    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("list", "subscription { conversationsChanged { __typename } }")
    await wait_for_members(user_group(user.pk))
    # Mallory creates and changes her conversations: Alice hears nothing.
    data = await gql.data(
        'mutation { createConversation(agent: "plain") { conversation { id } } }',
        token=other_token,
    )
    pk = data["createConversation"]["conversation"]["id"]
    await gql.data(
        "mutation($id: ID!) { archiveConversation(id: $id) { errors { code } } }",
        {"id": pk},
        token=other_token,
    )
    assert await socket.nothing(0.5)
    await socket.close()
