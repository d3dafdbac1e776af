"""A third-party GraphQL client (gql) against a live Confab server.

Signs in over REST for a token, then uses only gql: queries and mutations over HTTP
(`HTTPXAsyncTransport`), `conversationEvents` over a real websocket speaking
graphql-transport-ws (`WebsocketsTransport`, token in `connection_init`). The reply's
created / delta / completed events arrive in order and the deltas add up to the
stored text. (tests/api/graphql/test_live.py covers a subscription on one process
with the turn on another.)
"""

from __future__ import annotations

import asyncio
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


TREE_FIELDS = "id role text status parentId siblings { ids index }"
TREE_EVENTS = f"""
subscription Events($id: ID!) {{
  conversationEvents(conversationId: $id) {{
    __typename
    ... on MessageCompleted {{ message {{ {TREE_FIELDS} }} }}
    ... on MessageFailed {{ message {{ id }} error {{ code message }} }}
    ... on ConversationBranchChanged {{ activeLeafId conversation {{ id activeLeafId }} }}
  }}
}}
"""
TREE_SEND = f"""
mutation Send($id: ID!, $content: String!) {{
  sendMessage(conversationId: $id, content: $content) {{
    humanMessage {{ {TREE_FIELDS} }} aiMessage {{ {TREE_FIELDS} }} errors {{ field code }}
  }}
}}
"""
EDIT = f"""
mutation Edit($id: ID!, $messageId: ID!, $content: String!) {{
  editMessage(conversationId: $id, messageId: $messageId, content: $content) {{
    humanMessage {{ {TREE_FIELDS} }} aiMessage {{ {TREE_FIELDS} }} errors {{ field code }}
  }}
}}
"""
REGENERATE = f"""
mutation Regenerate($id: ID!) {{
  regenerate(conversationId: $id) {{ aiMessage {{ {TREE_FIELDS} }} errors {{ field code }} }}
}}
"""
SWITCH = """
mutation Switch($id: ID!, $messageId: ID!) {
  switchBranch(id: $id, messageId: $messageId) {
    conversation { id activeLeafId } errors { field code }
  }
}
"""
PAGE = f"""
query Page($id: ID!, $before: String) {{
  messages(conversationId: $id, last: 2, before: $before) {{
    nodes {{ {TREE_FIELDS} }} pageInfo {{ hasPreviousPage startCursor }}
  }}
}}
"""


async def test_edit_regenerate_twice_switch_back_and_page_the_restored_branch(server, user, llm):
    """Versions over gql: an edit and two regenerates keep every reply; switching back to
    the first version restores its branch, which pages like any history, and a second
    device (the subscription) is told of every branch change."""
    token = await sign_in(server, "alice", "alice-password-1")
    async with http_client(server, token) as http, ws_client(server, token) as ws:
        created = await http.execute(
            GraphQLRequest(CREATE, variable_values={"agent": "assistant", "title": "tree"})
        )
        conversation_id = created["createConversation"]["conversation"]["id"]
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        subscribed = asyncio.Event()

        async def follow() -> None:
            request = GraphQLRequest(TREE_EVENTS, variable_values={"id": conversation_id})
            async for result in ws.subscribe(request):
                subscribed.set()  # the first event is the snapshot: the server listens
                await events.put(result["conversationEvents"])

        follower = asyncio.ensure_future(follow())
        await asyncio.wait_for(subscribed.wait(), 10)
        branch_changes: list[str | None] = []

        async def completed(message_id: str) -> dict[str, Any]:
            while True:
                event = await asyncio.wait_for(events.get(), 20)
                if event["__typename"] == "ConversationBranchChanged":
                    assert event["activeLeafId"] == event["conversation"]["activeLeafId"]
                    branch_changes.append(event["activeLeafId"])
                elif event["__typename"] == "MessageFailed":
                    pytest.fail(f"the reply failed: {event}")
                elif (
                    event["__typename"] == "MessageCompleted"
                    and event["message"]["id"] == message_id
                ):
                    return event["message"]

        async def run(query: str, name: str, **variables: Any) -> dict[str, Any]:
            payload = (await http.execute(GraphQLRequest(query, variable_values=variables)))[name]
            assert payload["errors"] == [], payload
            return payload

        turns = []
        for content, reply in (("one", "A1"), ("two", "A2")):
            llm.reply_text([reply])
            sent = await run(TREE_SEND, "sendMessage", id=conversation_id, content=content)
            turns.append((sent["humanMessage"], await completed(sent["aiMessage"]["id"])))
        (one, a1), (two, a2) = turns
        assert two["parentId"] == a1["id"] and a2["parentId"] == two["id"]
        assert two["siblings"] == {"ids": [two["id"]], "index": 0}

        llm.reply_text(["B1"])
        edited = await run(
            EDIT, "editMessage", id=conversation_id, messageId=two["id"], content="deux"
        )
        deux = edited["humanMessage"]
        assert deux["parentId"] == a1["id"]
        assert deux["siblings"] == {"ids": [two["id"], deux["id"]], "index": 1}
        replies = [await completed(edited["aiMessage"]["id"])]
        for text in ("B2", "B3"):
            llm.reply_text([text])
            regenerated = await run(REGENERATE, "regenerate", id=conversation_id)
            replies.append(await completed(regenerated["aiMessage"]["id"]))
        assert [reply["text"] for reply in replies] == ["B1", "B2", "B3"]
        ids = [reply["id"] for reply in replies]
        assert replies[-1]["siblings"] == {"ids": ids, "index": 2}
        assert {reply["parentId"] for reply in replies} == {deux["id"]}
        # The model saw the active branch only: the edit, not the first version.
        prompt = [m["content"] for m in llm.requests[-1].body["messages"] if m["role"] == "user"]
        assert prompt == ["one", "deux"]

        # Back to the first version: its branch and its reply come back whole.
        switched = await run(SWITCH, "switchBranch", id=conversation_id, messageId=two["id"])
        assert switched["conversation"]["activeLeafId"] == a2["id"]
        while a2["id"] not in branch_changes:
            event = await asyncio.wait_for(events.get(), 10)
            if event["__typename"] == "ConversationBranchChanged":
                branch_changes.append(event["activeLeafId"])
        # Every change reached the second device: the edit, each regenerate, the switch.
        assert branch_changes == [edited["aiMessage"]["id"], ids[1], ids[2], a2["id"]]

        pages, before = [], None
        while True:
            page = (
                await http.execute(
                    GraphQLRequest(PAGE, variable_values={"id": conversation_id, "before": before})
                )
            )["messages"]
            pages.append([(node["text"], node["siblings"]) for node in page["nodes"]])
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        follower.cancel()

    assert pages == [
        [("two", {"ids": [two["id"], deux["id"]], "index": 0}), ("A2", a2["siblings"])],
        [("one", one["siblings"]), ("A1", a1["siblings"])],
    ]
