"""Each shape shared by REST, GraphQL and the live surfaces is the same on all of them.

The shapes are written once, in `conversations.payloads`; these tests read the same
object through every surface that shows it and compare field for field. GraphQL's
spelling is mapped back first (camelCase names, string IDs, enum names in capitals,
the agent as an object where REST gives its slug): everything else must be equal.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async
from langchain_core.messages import HumanMessage

from backend.asgi import application
from conversations import services
from conversations.events import user_group
from tests.support.graphql import GraphQLHTTP, GraphQLSocket, wait_for_members
from tests.support.rest import bearer
from tests.support.sockets import Socket, ws_path
from tests.support.turns import turn_cleanup  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

AGENTS = """
{ agents { slug name description model allowedModels tools
           contextVariables { name default description required } } }
"""
MESSAGE_FIELDS = """id conversationId role text content status turnId clientMessageId model
                    usage error createdAt updatedAt feedback { rating comment updatedAt }
                    attachments { id name contentType size sha256 width height url createdAt }
                    parentId siblings { ids index }"""
CONVERSATION = f"""
query($id: ID!) {{
  conversation(id: $id) {{
    id title context model temperature archived archivedAt lastMessageAt messageCount activeTurnId
    projectId pinned activeLeafId
    createdAt updatedAt agent {{ slug }} lastMessage {{ {MESSAGE_FIELDS} }}
  }}
}}
"""
MESSAGES = f"""
query($id: ID!) {{ messages(conversationId: $id, last: 10) {{ nodes {{ {MESSAGE_FIELDS} }} }} }}
"""
# GraphQL names that are not REST's name in camelCase.
RENAMED = {"conversationId": "conversation", "projectId": "project"}
ID_FIELDS = {"id", "conversation", "turn_id", "project", "parent_id", "active_leaf_id"}
ENUM_FIELDS = {"role", "status", "rating"}


def snake(name: str) -> str:
    return RENAMED.get(name) or re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def from_graphql(value: Any) -> Any:
    """A GraphQL object spelled as REST spells it."""
    if isinstance(value, list):
        return [from_graphql(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        name = snake(key)
        if name in ID_FIELDS and isinstance(item, str) and name != "turn_id":
            item = int(item)
        elif name == "ids":
            item = [int(pk) for pk in item]
        elif name in ENUM_FIELDS and isinstance(item, str):
            item = item.lower()
        elif name in ("context", "content", "usage", "error"):
            result[name] = item  # JSON scalars: their keys are data, not field names
            continue
        result[name] = from_graphql(item)
    return result


@pytest.fixture
async def clients(token):
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(token)
    ) as client:
        yield client, GraphQLHTTP(client)


async def test_the_agent_shape_is_the_same_on_rest_and_graphql(clients, token, tutor, assistant):
    rest, graphql = clients
    over_rest = (await rest.get("/api/v1/agents/")).json()["results"]
    over_graphql = from_graphql((await graphql.data(AGENTS, token=token))["agents"])
    assert over_rest == over_graphql
    tutor_shape = next(agent for agent in over_rest if agent["slug"] == "language-tutor")
    assert {v["name"]: v["required"] for v in tutor_shape["context_variables"]} == {
        "언어": False,
        "상황": False,
        "레벨": False,
    }
    single = (await rest.get("/api/v1/agents/language-tutor/")).json()
    assert single == tutor_shape


async def test_the_message_and_conversation_shapes_are_the_same_everywhere(
    clients, token, llm, conversation
):
    rest, graphql = clients
    llm.reply_text(["One ", "shape."], usage=(4, 2))
    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    sent = await rest.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        json={"content": "Same everywhere?", "client_message_id": "shape-1"},
    )
    assert sent.status_code == 201, sent.text
    turn = sent.json()
    live_ai = (await socket.until("message.completed", role="ai"))["message"]
    await socket.close()

    base = f"/api/v1/conversations/{conversation.pk}"
    page = (await rest.get(f"{base}/messages/")).json()["results"]
    detail = (await rest.get(f"{base}/messages/{turn['ai_message']['id']}/")).json()
    variables = {"id": str(conversation.pk)}
    nodes = from_graphql((await graphql.data(MESSAGES, variables, token=token))["messages"])
    assert page == [turn["human_message"], turn["ai_message"]]
    assert detail == turn["ai_message"] == live_ai
    assert nodes["nodes"] == page

    over_rest = (await rest.get(f"{base}/")).json()
    over_graphql = from_graphql(
        (await graphql.data(CONVERSATION, variables, token=token))["conversation"]
    )
    over_graphql["agent"] = over_graphql["agent"]["slug"]
    assert over_graphql == over_rest
    listed = (await rest.get("/api/v1/conversations/")).json()["results"]
    assert listed == [over_rest]

    # A rating is part of the message everywhere it is read.
    rated = await rest.put(
        f"{base}/messages/{turn['ai_message']['id']}/feedback/",
        json={"rating": "up", "comment": "nice"},
    )
    assert rated.status_code == 200, rated.text
    assert rated.json()["feedback"]["rating"] == "up"
    page = (await rest.get(f"{base}/messages/")).json()["results"]
    nodes = from_graphql((await graphql.data(MESSAGES, variables, token=token))["messages"])
    assert nodes["nodes"] == page and page[1] == rated.json()


PROJECT = "id name instructions defaultAgent createdAt updatedAt"
SHARE = "id conversationId token url upToMessageId createdAt"


async def test_the_project_and_share_shapes_are_the_same_on_rest_and_graphql(
    clients, token, conversation, plain_agent
):
    rest, graphql = clients
    created = await rest.post(
        "/api/v1/projects/",
        json={"name": "Trip", "instructions": "Be brief.", "default_agent": plain_agent.slug},
    )
    assert created.status_code == 201, created.text
    project = created.json()
    over_graphql = await graphql.data(
        f"query($id: ID!) {{ project(id: $id) {{ {PROJECT} }} projects {{ {PROJECT} }} }}",
        {"id": str(project["id"])},
        token=token,
    )
    assert from_graphql(over_graphql["project"]) == project
    assert from_graphql(over_graphql["projects"]) == [project]

    await database_sync_to_async(services.append_message)(
        conversation=conversation, message=HumanMessage("Shared.")
    )
    shared = await rest.post(f"/api/v1/conversations/{conversation.pk}/shares/", json={})
    assert shared.status_code == 201, shared.text
    listed = (await rest.get(f"/api/v1/conversations/{conversation.pk}/shares/")).json()
    over_graphql = await graphql.data(
        f"query($id: ID!) {{ shares(conversationId: $id) {{ {SHARE} }} }}",
        {"id": str(conversation.pk)},
        token=token,
    )
    shares = [
        {**share, "up_to_message_id": int(share["up_to_message_id"])}
        for share in from_graphql(over_graphql["shares"])
    ]
    assert shares == listed["results"] == [shared.json()]


CONVERSATION_FIELDS = """id title context model temperature archived archivedAt lastMessageAt
    messageCount activeTurnId projectId pinned createdAt updatedAt agent { slug name }
    lastMessage { id text }"""


async def test_a_conversation_from_an_event_is_the_conversation_a_query_gives(
    clients, token, user, conversation
):
    """Subscriptions resolve the Conversation type from an event's JSON, queries from
    the row: the same object must read the same either way."""
    rest, graphql = clients
    await database_sync_to_async(services.append_message)(
        conversation=conversation, message=HumanMessage("Last words.")
    )
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe(
        "list",
        "subscription { conversationsChanged { __typename "
        f"... on ConversationUpdated {{ conversation {{ {CONVERSATION_FIELDS} }} }} }} }}",
    )
    await wait_for_members(user_group(user.pk))
    changed = await rest.patch(
        f"/api/v1/conversations/{conversation.pk}/",
        json={"title": "Renamed", "archived": True, "pinned": True, "temperature": 0.5},
    )
    assert changed.status_code == 200, changed.text
    event = (await socket.next_data("list"))["conversationsChanged"]
    await socket.close()
    assert event["__typename"] == "ConversationUpdated"
    queried = await graphql.data(
        f"query($id: ID!) {{ conversation(id: $id) {{ {CONVERSATION_FIELDS} }} }}",
        {"id": str(conversation.pk)},
        token=token,
    )
    assert event["conversation"] == queried["conversation"]
    assert queried["conversation"]["title"] == "Renamed"
    assert queried["conversation"]["archivedAt"].endswith("Z")
