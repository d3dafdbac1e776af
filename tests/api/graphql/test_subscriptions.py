"""Subscriptions end to end over Channels: graphql-transport-ws (and legacy graphql-ws),
authentication, a full streamed turn, conversationsChanged, limits and clean-up."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from conversations import services
from conversations.events import conversation_group, user_group
from conversations.models import Conversation, ConversationMessage
from tests.support.graphql import (
    GraphQLSocket,
    auth_header,
    db,
    group_members,
    wait_for_members,
    wait_until_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = "id conversationId role text status turnId usage error"
EVENTS = f"""
subscription($id: ID!) {{
  conversationEvents(conversationId: $id) {{
    __typename
    ... on MessageCreated {{ message {{ {MESSAGE} }} }}
    ... on MessageDelta {{ conversationId messageId index offset delta }}
    ... on MessageCompleted {{ message {{ {MESSAGE} }} }}
    ... on MessageFailed {{ message {{ {MESSAGE} }} error {{ code message }} }}
    ... on MessageDeleted {{ conversationId messageIds }}
    ... on ConversationBranchChanged {{ conversationId activeLeafId
                                         conversation {{ activeLeafId }} }}
    ... on ConversationUpdated {{ conversation {{ id title activeTurnId messageCount
                                                   agent {{ slug }} lastMessage {{ id }} }} }}
    ... on ConversationCleared {{ conversation {{ id messageCount }} }}
    ... on ConversationDeleted {{ conversation {{ id }} }}
  }}
}}
"""
CHANGES = """
subscription {
  conversationsChanged {
    __typename
    ... on ConversationCreated { conversation { id title agent { slug } } }
    ... on ConversationUpdated { conversation { id title archived lastMessage { text } } }
    ... on ConversationCleared { conversation { id messageCount } }
    ... on ConversationDeleted { conversation { id title } }
  }
}
"""
SEND = """
mutation($id: ID!, $content: String!) {
  sendMessage(conversationId: $id, content: $content) {
    humanMessage { id } aiMessage { id status } errors { code }
  }
}
"""


async def subscribe_events(socket: GraphQLSocket, conversation_id: int, op: str = "1") -> dict:
    """Subscribe to conversationEvents and return its first event (the snapshot)."""
    await socket.subscribe(op, EVENTS, {"id": conversation_id})
    snapshot = (await socket.next_data(op))["conversationEvents"]
    assert snapshot["__typename"] == "ConversationUpdated"
    return snapshot


async def events_until(
    socket: GraphQLSocket, op: str, done: Any, limit: int = 200
) -> list[dict[str, Any]]:
    events = []
    for _ in range(limit):
        event = (await socket.next_data(op))["conversationEvents"]
        events.append(event)
        if done(event):
            return events
    raise AssertionError(f"no final event in {events}")


async def test_full_turn_streams_created_delta_completed(gql, token, conversation, llm):
    llm.reply_text(["Hel", "lo"], usage=(5, 2), chunk_delay=0.05)
    socket = GraphQLSocket()
    await socket.connect(token)
    snapshot = await subscribe_events(socket, conversation.pk)
    assert snapshot["conversation"] == {
        "id": str(conversation.pk),
        "title": "Test chat",
        "activeTurnId": None,
        "messageCount": 0,
        "agent": {"slug": "plain"},
        "lastMessage": None,
    }

    sent = await gql.data(SEND, {"id": conversation.pk, "content": "Hi"}, token=token)
    ai_id = sent["sendMessage"]["aiMessage"]["id"]
    events = await events_until(
        socket,
        "1",
        lambda e: e["__typename"] == "MessageCompleted" and e["message"]["id"] == ai_id,
    )
    kinds = [event["__typename"] for event in events]
    created = [e["message"] for e in events if e["__typename"] == "MessageCreated"]
    assert [(m["role"], m["status"]) for m in created] == [
        ("HUMAN", "COMPLETE"),
        ("AI", "STREAMING"),
    ]
    assert created[0]["text"] == "Hi" and created[1]["id"] == ai_id
    deltas = [e for e in events if e["__typename"] == "MessageDelta"]
    assert deltas and kinds.index("MessageDelta") > kinds.index("MessageCreated")
    assert [d["index"] for d in deltas] == list(range(len(deltas)))
    assert all(
        d["messageId"] == ai_id and d["conversationId"] == str(conversation.pk) for d in deltas
    )
    text = "".join(d["delta"] for d in deltas)
    offsets = [d["offset"] for d in deltas]
    assert offsets == [len("".join(d["delta"] for d in deltas[:i])) for i in range(len(deltas))]
    completed = events[-1]["message"]
    assert completed["status"] == "COMPLETE"
    assert completed["usage"] == {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}

    stored = await ConversationMessage.objects.aget(pk=ai_id)
    assert text == completed["text"] == stored.text == "Hello"
    # The turn's end releases the lock: a ConversationUpdated without active turn.
    released = await events_until(
        socket,
        "1",
        lambda e: (
            e["__typename"] == "ConversationUpdated" and not e["conversation"]["activeTurnId"]
        ),
    )
    assert released[-1]["conversation"]["lastMessage"] == {"id": ai_id}
    await socket.complete("1")
    await socket.close()


async def test_failed_turn_is_a_message_failed_event(gql, token, conversation, llm):
    llm.reply_error(500)
    socket = GraphQLSocket()
    await socket.connect(token)
    await subscribe_events(socket, conversation.pk)
    await gql.data(SEND, {"id": conversation.pk, "content": "Hi"}, token=token)
    events = await events_until(socket, "1", lambda e: e["__typename"] == "MessageFailed")
    failed = events[-1]
    assert failed["message"]["status"] == "FAILED"
    assert failed["error"]["code"] and failed["error"]["message"]
    assert failed["message"]["error"]["code"] == failed["error"]["code"]
    await wait_until_idle(conversation.pk)
    await socket.close()


async def test_clear_update_regenerate_and_delete_events(gql, token, conversation, llm):
    socket = GraphQLSocket()
    await socket.connect(token)
    await subscribe_events(socket, conversation.pk)

    await gql.data(
        'mutation($id: ID!) { updateConversation(id: $id, title: "New") { errors { code } } }',
        {"id": conversation.pk},
        token=token,
    )
    event = (await socket.next_data("1"))["conversationEvents"]
    assert event["__typename"] == "ConversationUpdated"
    assert event["conversation"]["title"] == "New"

    llm.reply_text(["one"])
    sent = await gql.data(SEND, {"id": conversation.pk, "content": "Hi"}, token=token)
    await events_until(socket, "1", lambda e: e["__typename"] == "MessageCompleted")
    await wait_until_idle(conversation.pk)
    llm.reply_text(["two"])
    await gql.data(
        "mutation($id: ID!) { regenerate(conversationId: $id) { errors { code } } }",
        {"id": conversation.pk},
        token=token,
    )
    events = await events_until(socket, "1", lambda e: e["__typename"] == "MessageCompleted")
    assert [e for e in events if e["__typename"] == "MessageDeleted"] == []
    new_reply = events[-1]["message"]
    assert new_reply["text"] == "two"
    assert new_reply["id"] != sent["sendMessage"]["aiMessage"]["id"]
    switched = [e for e in events if e["__typename"] == "ConversationBranchChanged"]
    assert switched == [
        {
            "__typename": "ConversationBranchChanged",
            "conversationId": str(conversation.pk),
            "activeLeafId": new_reply["id"],
            "conversation": {"activeLeafId": new_reply["id"]},
        }
    ]
    await wait_until_idle(conversation.pk)

    await gql.data(
        "mutation($id: ID!) { clearConversation(id: $id) { errors { code } } }",
        {"id": conversation.pk},
        token=token,
    )
    events = await events_until(socket, "1", lambda e: e["__typename"] == "ConversationCleared")
    assert events[-1]["conversation"] == {"id": str(conversation.pk), "messageCount": 0}

    await gql.data(
        "mutation($id: ID!) { deleteConversation(id: $id) { errors { code } } }",
        {"id": conversation.pk},
        token=token,
    )
    events = await events_until(socket, "1", lambda e: e["__typename"] == "ConversationDeleted")
    assert events[-1]["conversation"] == {"id": str(conversation.pk)}
    # The stream ends after the conversation is gone.
    assert await socket.receive() == {"id": "1", "type": "complete"}
    await socket.close()


async def test_conversations_changed(gql, token, user, plain_agent):
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("list", CHANGES)
    await wait_for_members(user_group(user.pk))

    data = await gql.data(
        'mutation { createConversation(agent: "plain", title: "Fresh") '
        "{ conversation { id } errors { code } } }",
        token=token,
    )
    pk = data["createConversation"]["conversation"]["id"]
    created = (await socket.next_data("list"))["conversationsChanged"]
    assert created == {
        "__typename": "ConversationCreated",
        "conversation": {"id": pk, "title": "Fresh", "agent": {"slug": "plain"}},
    }

    await db(
        lambda: services.append_message(
            conversation=Conversation.objects.get(pk=pk), message=HumanMessage("x")
        )
    )
    # A new message changes the conversation (its count, its place in the list).
    appended = (await socket.next_data("list"))["conversationsChanged"]
    assert appended["__typename"] == "ConversationUpdated"
    assert appended["conversation"]["archived"] is False
    await gql.data(
        "mutation($id: ID!) { archiveConversation(id: $id) { errors { code } } }",
        {"id": pk},
        token=token,
    )
    updated = (await socket.next_data("list"))["conversationsChanged"]
    assert updated["__typename"] == "ConversationUpdated"
    assert updated["conversation"]["archived"] is True
    assert updated["conversation"]["lastMessage"] == {"text": "x"}

    await gql.data(
        "mutation($id: ID!) { clearConversation(id: $id) { errors { code } } }",
        {"id": pk},
        token=token,
    )
    cleared = (await socket.next_data("list"))["conversationsChanged"]
    assert cleared == {
        "__typename": "ConversationCleared",
        "conversation": {"id": pk, "messageCount": 0},
    }

    await gql.data(
        "mutation($id: ID!) { deleteConversation(id: $id) { errors { code } } }",
        {"id": pk},
        token=token,
    )
    deleted = (await socket.next_data("list"))["conversationsChanged"]
    assert deleted == {
        "__typename": "ConversationDeleted",
        "conversation": {"id": pk, "title": "Fresh"},
    }
    await socket.close()


async def test_authentication_by_header_and_query_token(token, conversation):
    for socket in (
        GraphQLSocket(headers=auth_header(token)),
        GraphQLSocket(path=f"/graphql/?token={token}"),
    ):
        ack = await socket.init({})
        assert ack == {"type": "connection_ack"}
        await subscribe_events(socket, conversation.pk)
        await socket.close()


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"authorization": "Bearer not-a-token"}, {"authorization": 42}, {"other": "x"}],
)
async def test_missing_or_invalid_credentials_are_refused_with_4403(db, payload):
    socket = GraphQLSocket()
    await socket.open()
    message: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        message["payload"] = payload
    await socket.send(message)
    assert await socket.closed_with() == 4403


async def test_an_invalid_init_token_is_refused_even_with_a_valid_header(token, other_token):
    socket = GraphQLSocket(headers=auth_header(token))
    await socket.open()
    await socket.send({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
    assert await socket.closed_with() == 4403


async def test_subscribe_before_init_is_refused(token, conversation):
    socket = GraphQLSocket(headers=auth_header(token))
    await socket.open()
    await socket.subscribe("1", EVENTS, {"id": conversation.pk})
    assert await socket.closed_with() == 4401


async def test_revoked_token_is_refused(token, user, conversation):
    from knox.models import get_token_model

    await get_token_model().objects.filter(user=user).adelete()
    socket = GraphQLSocket()
    await socket.open()
    await socket.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    assert await socket.closed_with() == 4403


@pytest.mark.parametrize("bad_id", ["0", "abc", "987654321"])
async def test_unknown_conversation_is_a_not_found_error(token, bad_id):
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("1", EVENTS, {"id": bad_id})
    message = await socket.receive()
    assert message["type"] == "error" and message["id"] == "1"
    [error] = message["payload"]
    assert error["extensions"] == {"code": "NOT_FOUND", "type": "not_found"}
    assert error["message"] in ("Conversation not found.", "Not found.")
    # The connection stays usable.
    await socket.send({"type": "ping"})
    assert await socket.receive() == {"type": "pong"}
    await socket.close()


async def test_complete_leaves_the_group(gql, token, conversation):
    socket = GraphQLSocket()
    await socket.connect(token)
    await subscribe_events(socket, conversation.pk)
    assert len(group_members(conversation_group(conversation.pk))) == 1
    await socket.complete("1")
    await wait_for_members(conversation_group(conversation.pk), 0)
    await gql.data(
        'mutation($id: ID!) { updateConversation(id: $id, title: "After") { errors { code } } }',
        {"id": conversation.pk},
        token=token,
    )
    assert await socket.nothing(0.5)
    # The same id can be used again at once.
    await subscribe_events(socket, conversation.pk)
    await socket.close()


async def test_disconnect_ends_every_subscription(token, user, conversation):
    socket = GraphQLSocket()
    await socket.connect(token)
    await subscribe_events(socket, conversation.pk, "a")
    await subscribe_events(socket, conversation.pk, "b")
    await socket.subscribe("c", CHANGES)
    await wait_for_members(user_group(user.pk))
    # Two subscriptions of one connection share its channel: one membership.
    assert len(group_members(conversation_group(conversation.pk))) == 1
    await socket.close()
    assert group_members(conversation_group(conversation.pk)) == set()
    assert group_members(user_group(user.pk)) == set()


async def test_malformed_layer_messages_are_skipped(gql, token, conversation):
    from channels.layers import get_channel_layer

    socket = GraphQLSocket()
    await socket.connect(token)
    await subscribe_events(socket, conversation.pk)
    layer = get_channel_layer()
    group = conversation_group(conversation.pk)
    for event in (None, "x", {}, {"type": "message.created"}, {"type": "unknown.kind"}):
        await layer.group_send(group, {"type": "confab.event", "event": event})
    await gql.data(
        'mutation($id: ID!) { updateConversation(id: $id, title: "Still") { errors { code } } }',
        {"id": conversation.pk},
        token=token,
    )
    event = (await socket.next_data("1"))["conversationEvents"]
    assert event["__typename"] == "ConversationUpdated"
    assert event["conversation"]["title"] == "Still"
    await socket.close()


async def test_subscription_limit_per_connection(token, conversation, settings):
    settings.CONFAB_GRAPHQL_MAX_SUBSCRIPTIONS = 2
    socket = GraphQLSocket()
    await socket.connect(token)
    await subscribe_events(socket, conversation.pk, "1")
    await subscribe_events(socket, conversation.pk, "2")
    await socket.subscribe("3", EVENTS, {"id": conversation.pk})
    message = await socket.receive()
    assert message["type"] == "error" and message["id"] == "3"
    assert message["payload"][0]["message"] == "Subscription limit reached"
    # Completing one frees a slot.
    await socket.complete("1")
    await subscribe_events(socket, conversation.pk, "4")
    await socket.close()


async def test_queries_and_mutations_over_the_socket(token, user, conversation):
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("q", "{ me { username } }")
    assert await socket.next_data("q") == {"me": {"username": "alice"}}
    assert await socket.receive() == {"id": "q", "type": "complete"}
    await socket.close()


async def test_legacy_graphql_ws_protocol(gql, token, conversation, llm):
    llm.reply_text(["Hel", "lo"], usage=(5, 2))
    socket = GraphQLSocket(protocol="graphql-ws")
    await socket.connect(token)
    await subscribe_events(socket, conversation.pk)
    await gql.data(SEND, {"id": conversation.pk, "content": "Hi"}, token=token)
    events = await events_until(socket, "1", lambda e: e["__typename"] == "MessageCompleted")
    text = "".join(e["delta"] for e in events if e["__typename"] == "MessageDelta")
    assert text == events[-1]["message"]["text"] == "Hello"
    await socket.complete("1")
    assert await socket.receive() == {"id": "1", "type": "complete"}
    await socket.close()


async def test_legacy_protocol_refuses_anonymous_connections(db):
    socket = GraphQLSocket(protocol="graphql-ws")
    answer = await socket.init({})
    assert answer["type"] == "connection_error"
    assert answer["payload"]["code"] == "NOT_AUTHENTICATED"
    assert await socket.closed_with() == 1011


async def test_legacy_not_found_error(token):
    socket = GraphQLSocket(protocol="graphql-ws")
    await socket.connect(token)
    await socket.subscribe("1", EVENTS, {"id": "424242"})
    message = await socket.receive()
    assert message["type"] == "error" and message["id"] == "1"
    assert message["payload"]["extensions"]["code"] == "NOT_FOUND"
    await socket.close()


async def test_origin_must_be_allowed(token, settings):
    settings.CONFAB_WS_ALLOWED_ORIGINS = ["https://app.example.com"]
    refused = GraphQLSocket(
        headers=[(b"origin", b"https://evil.example.com"), (b"host", b"api.example.com")]
    )
    connected, _ = await refused.communicator.connect(timeout=5)
    assert not connected
    allowed = GraphQLSocket(
        headers=[(b"origin", b"https://app.example.com"), (b"host", b"api.example.com")]
    )
    await allowed.connect(token)
    await allowed.close()
    same_origin = GraphQLSocket(
        headers=[(b"origin", b"https://api.example.com"), (b"host", b"api.example.com")]
    )
    await same_origin.connect(token)
    await same_origin.close()
