"""A third-party GraphQL client (gql) against a live Confab server.

Signs in over REST for a token, then uses only gql: queries and mutations over HTTP
(`HTTPXAsyncTransport`), `conversationEvents` over a real websocket speaking
graphql-transport-ws (`WebsocketsTransport`, token in `connection_init`). The reply's
created / delta / completed events arrive in order and the deltas add up to the
stored text. (tests/api/graphql/test_live.py covers a subscription on one process
with the turn on another.)
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tests.support.gql_client import http_client, sign_in, ws_client
from tests.support.servers import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

MESSAGE_FIELDS = "id role text status clientMessageId usage"
CREATE = """
mutation Create($agent: String!, $title: String) {
  createConversation(agent: $agent, title: $title) {
    conversation { id title agent { slug } }
    errors { field code message }
  }
}
"""
SEND = f"""
mutation Send($id: ID!, $content: String!, $clientMessageId: String) {{
  sendMessage(conversationId: $id, content: $content, clientMessageId: $clientMessageId) {{
    humanMessage {{ {MESSAGE_FIELDS} }}
    aiMessage {{ {MESSAGE_FIELDS} }}
    errors {{ field code message }}
  }}
}}
"""
EVENTS = f"""
subscription Events($id: ID!) {{
  conversationEvents(conversationId: $id) {{
    __typename
    ... on MessageCreated {{ message {{ {MESSAGE_FIELDS} }} }}
    ... on MessageDelta {{ conversationId messageId index offset delta }}
    ... on MessageCompleted {{ message {{ {MESSAGE_FIELDS} }} }}
    ... on MessageFailed {{ message {{ id }} error {{ code message }} }}
    ... on ConversationUpdated {{ conversation {{ id activeTurnId messageCount }} }}
  }}
}}
"""
HISTORY = f"""
query History($id: ID!) {{
  messages(conversationId: $id, last: 10) {{ nodes {{ {MESSAGE_FIELDS} }} }}
}}
"""
DELTAS = ["Bonjour", " ! ", "Un café", ", s'il", " vous", " plaît", " ?"]


@pytest.fixture
def server(live_server_factory, seed_agents) -> LiveServer:
    return live_server_factory(extra_env={"CONFAB_REDIS_PREFIX": f"gql-{uuid.uuid4().hex}"})


async def test_subscription_streams_a_reply_sent_by_mutation(server, user, llm):
    token = await sign_in(server, "alice", "alice-password-1")
    async with (
        http_client(server, token) as http,
        ws_client(server, token) as ws,
    ):
        created = await http.execute(
            GraphQLRequest(CREATE, variable_values={"agent": "assistant", "title": "gql"})
        )
        payload = created["createConversation"]
        assert payload["errors"] == []
        conversation_id = payload["conversation"]["id"]

        llm.reply_text(DELTAS, usage=(9, 7), chunk_delay=0.02)
        events: list[dict[str, Any]] = []
        sent: dict[str, Any] | None = None
        subscription = ws.subscribe(GraphQLRequest(EVENTS, variable_values={"id": conversation_id}))
        async for result in subscription:
            event = result["conversationEvents"]
            events.append(event)
            if sent is None:
                # The snapshot says the server listens: nothing sent from now on is missed.
                assert event["__typename"] == "ConversationUpdated"
                assert event["conversation"]["activeTurnId"] is None
                response = await http.execute(
                    GraphQLRequest(
                        SEND,
                        variable_values={
                            "id": conversation_id,
                            "content": "Un café, s'il vous plaît",
                            "clientMessageId": "gql-1",
                        },
                    )
                )
                sent = response["sendMessage"]
                assert sent["errors"] == []
            elif event["__typename"] == "MessageFailed":
                pytest.fail(f"the reply failed: {event}")
            elif (
                event["__typename"] == "MessageCompleted"
                and event["message"]["id"] == sent["aiMessage"]["id"]
            ):
                break
        await subscription.aclose()

        history = await http.execute(
            GraphQLRequest(HISTORY, variable_values={"id": conversation_id})
        )

    human, placeholder = sent["humanMessage"], sent["aiMessage"]
    assert (human["role"], human["status"], human["clientMessageId"]) == (
        "HUMAN",
        "COMPLETE",
        "gql-1",
    )
    assert (placeholder["role"], placeholder["status"], placeholder["text"]) == (
        "AI",
        "STREAMING",
        "",
    )

    message_events = [event for event in events if event["__typename"] != "ConversationUpdated"]
    created_ids = [
        event["message"]["id"]
        for event in message_events
        if event["__typename"] == "MessageCreated"
    ]
    assert created_ids == [human["id"], placeholder["id"]]
    deltas = [event for event in message_events if event["__typename"] == "MessageDelta"]
    assert deltas, "no delta events"
    assert message_events[-1]["__typename"] == "MessageCompleted"
    # Order: both created events, then the deltas, then the completion.
    kinds = [event["__typename"] for event in message_events]
    assert kinds == ["MessageCreated", "MessageCreated"] + ["MessageDelta"] * len(deltas) + [
        "MessageCompleted"
    ]
    assert {event["messageId"] for event in deltas} == {placeholder["id"]}
    assert [event["index"] for event in deltas] == list(range(len(deltas)))
    offset = 0
    for event in deltas:
        assert event["offset"] == offset
        offset += len(event["delta"])

    completed = message_events[-1]["message"]
    streamed = "".join(event["delta"] for event in deltas)
    stored = history["messages"]["nodes"][-1]
    assert streamed == completed["text"] == stored["text"] == "".join(DELTAS)
    assert stored["id"] == placeholder["id"] and stored["status"] == "COMPLETE"
    assert completed["usage"] == {"input_tokens": 9, "output_tokens": 7, "total_tokens": 16}


async def test_errors_reach_the_client_typed(server, user, other_user, conversation, llm):
    token = await sign_in(server, "mallory", "mallory-password-1")
    async with http_client(server, token) as http, ws_client(server, token) as ws:
        # Someone else's conversation: NOT_FOUND on the subscription and the mutation.
        with pytest.raises(TransportQueryError) as caught:
            async for _ in ws.subscribe(
                GraphQLRequest(EVENTS, variable_values={"id": str(conversation.pk)})
            ):
                pytest.fail("an event of someone else's conversation")
        assert caught.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
        with pytest.raises(TransportQueryError) as caught:
            await http.execute(
                GraphQLRequest(SEND, variable_values={"id": str(conversation.pk), "content": "hi"})
            )
        assert caught.value.errors[0]["extensions"]["code"] == "NOT_FOUND"

        # Input errors are data on the payload.
        created = await http.execute(
            GraphQLRequest(CREATE, variable_values={"agent": "no-such-agent"})
        )
        assert created["createConversation"]["conversation"] is None
        assert [(e["field"], e["code"]) for e in created["createConversation"]["errors"]] == [
            ("agent", "not_found")
        ]
