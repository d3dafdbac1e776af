"""End to end on real servers: a third-party GraphQL client (gql) subscribes on one
uvicorn process while the turn runs on another (Redis channel layer)."""

from __future__ import annotations

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from conversations.models import ConversationMessage
from tests.support.requirements import needs_redis

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = """
    subscription($id: ID!) {
      conversationEvents(conversationId: $id) {
        __typename
        ... on MessageDelta { messageId delta }
        ... on MessageCompleted { message { id text status } }
      }
    }
"""
SEND = """
mutation($id: ID!) { sendMessage(conversationId: $id, content: "Hi") { aiMessage { id } } }
"""


@needs_redis("a subscription on one process following a turn on another")
async def test_subscription_on_one_process_streams_a_turn_run_on_another(
    live_server_factory, llm, token, conversation
):
    listener, runner = live_server_factory(), live_server_factory()
    llm.reply_text(["Hel", "lo", " there"], usage=(5, 3), chunk_delay=0.05)
    transport = WebsocketsTransport(
        url=f"{listener.ws_url}/graphql/",
        init_payload={"authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    ai_id = None
    deltas: list[str] = []
    completed: dict | None = None
    async with Client(transport=transport) as session, httpx.AsyncClient() as http:
        variables = {"id": str(conversation.pk)}
        async for result in session.subscribe(GraphQLRequest(EVENTS, variable_values=variables)):
            event = result["conversationEvents"]
            if ai_id is None:
                # The first event is the snapshot: the subscription is live; start a turn
                # on the other server.
                assert event["__typename"] == "ConversationUpdated"
                response = await http.post(
                    f"{runner.url}/graphql/",
                    json={"query": SEND, "variables": variables},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=10,
                )
                assert response.status_code == 200, response.text
                ai_id = response.json()["data"]["sendMessage"]["aiMessage"]["id"]
            elif event["__typename"] == "MessageDelta":
                deltas.append(event["delta"])
            elif event["__typename"] == "MessageCompleted" and event["message"]["id"] == ai_id:
                completed = event["message"]
                break
    stored = await ConversationMessage.objects.aget(pk=ai_id)
    assert completed is not None and completed["status"] == "COMPLETE"
    assert "".join(deltas) == completed["text"] == stored.text == "Hello there"
