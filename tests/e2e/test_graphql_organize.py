"""Organise, find and rate through a third-party GraphQL client (gql) against a live
server: projects, moving and pinning conversations, the project filter, full-text
search over the conversations' messages (Korean, cursor pages, role filter) and
feedback on a reply (issue 19)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tests.support.gql_client import http_client, sign_in
from tests.support.live_clients import wait_idle
from tests.support.servers import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

PROJECT = """
mutation($name: String!, $instructions: String, $agent: String) {
  createProject(name: $name, instructions: $instructions, defaultAgent: $agent) {
    project { id name defaultAgent } errors { field code message }
  }
}
"""
CREATE = """
mutation($title: String, $project: ID, $agent: String) {
  createConversation(title: $title, project: $project, agent: $agent) {
    conversation { id projectId agent { slug } } errors { field code message }
  }
}
"""
SEND = """
mutation($id: ID!, $content: String!) {
  sendMessage(conversationId: $id, content: $content) {
    humanMessage { id } aiMessage { id status } errors { field code message }
  }
}
"""
UPDATE = """
mutation($id: ID!, $pinned: Boolean, $project: ID) {
  updateConversation(id: $id, pinned: $pinned, project: $project) {
    conversation { id pinned projectId } errors { field code message }
  }
}
"""
LIST = """
query($project: String) {
  conversations(project: $project) { nodes { id pinned } }
}
"""
SEARCH = """
query($query: String!, $first: Int, $after: String, $role: String) {
  search(query: $query, first: $first, after: $after, role: $role) {
    results { conversation { id title } message { id role } snippet }
    nextCursor hasMore
  }
}
"""
RATE = """
mutation($conversation: ID!, $message: ID!, $rating: FeedbackRating!, $comment: String) {
  setMessageFeedback(conversationId: $conversation, messageId: $message, rating: $rating,
                     comment: $comment) {
    message { id feedback { rating comment } } errors { field code message }
  }
}
"""
HISTORY = """
query($id: ID!) { messages(conversationId: $id, last: 10) { nodes { id feedback { rating } } } }
"""


@pytest.fixture
def server(live_server_factory, seed_agents) -> LiveServer:
    return live_server_factory(extra_env={"CONFAB_REDIS_PREFIX": f"gql-{uuid.uuid4().hex}"})


async def run(client: Any, document: str, **variables: Any) -> dict[str, Any]:
    return await client.execute(GraphQLRequest(document, variable_values=variables))


def payload(result: dict[str, Any], field: str) -> dict[str, Any]:
    assert result[field]["errors"] == [], result[field]["errors"]
    return result[field]


async def test_projects_pins_search_and_feedback(server, user, other_user, llm):
    token = await sign_in(server, "alice", "alice-password-1")
    other_token = await sign_in(server, "mallory", "mallory-password-1")
    async with http_client(server, token) as gql, http_client(server, other_token) as other:
        project = payload(
            await run(
                gql, PROJECT, name="여행", instructions="Answer in Korean.", agent="assistant"
            ),
            "createProject",
        )["project"]
        busan = payload(
            await run(gql, CREATE, title="부산 여행", project=project["id"]), "createConversation"
        )["conversation"]
        assert busan["projectId"] == project["id"] and busan["agent"]["slug"] == "assistant"
        coffee = payload(
            await run(gql, CREATE, title="커피", agent="assistant"), "createConversation"
        )["conversation"]

        llm.reply_text(["해운대에 ", "가 보세요."])
        turn = payload(
            await run(gql, SEND, id=busan["id"], content="부산에서 어디 갈까요?"), "sendMessage"
        )
        await wait_idle(int(busan["id"]))  # sendMessage answers as the turn starts
        assert "Answer in Korean." in str(llm.requests[-1].body["messages"][0])
        llm.reply_text(["아메리카노 ", "드릴게요."])
        coffee_turn = payload(
            await run(gql, SEND, id=coffee["id"], content="부산 커피 추천해 주세요"),
            "sendMessage",
        )
        await wait_idle(int(coffee["id"]))

        async def listed(project_filter: str | None = None) -> list[str]:
            nodes = (await run(gql, LIST, project=project_filter))["conversations"]["nodes"]
            return [node["id"] for node in nodes]

        assert await listed(project["id"]) == [busan["id"]]
        assert await listed("none") == [coffee["id"]]
        assert await listed() == [coffee["id"], busan["id"]]
        pinned = payload(await run(gql, UPDATE, id=busan["id"], pinned=True), "updateConversation")
        assert pinned["conversation"]["pinned"] is True
        assert await listed() == [busan["id"], coffee["id"]]
        moved = payload(await run(gql, UPDATE, id=busan["id"], project=None), "updateConversation")
        assert moved["conversation"]["projectId"] is None
        assert await listed(project["id"]) == []

        first = (await run(gql, SEARCH, query="부산", first=1))["search"]
        assert first["hasMore"] and "<mark>부산</mark>" in first["results"][0]["snippet"]
        rest = (await run(gql, SEARCH, query="부산", after=first["nextCursor"]))["search"]
        found = {result["message"]["id"] for result in first["results"] + rest["results"]}
        assert found == {turn["humanMessage"]["id"], coffee_turn["humanMessage"]["id"]}
        replies = (await run(gql, SEARCH, query="해운대", role="ai"))["search"]["results"]
        assert [result["message"]["id"] for result in replies] == [turn["aiMessage"]["id"]]
        assert (await run(other, SEARCH, query="부산"))["search"]["results"] == []
        with pytest.raises(TransportQueryError) as refused:
            await run(gql, SEARCH, query=" ")
        assert refused.value.errors[0]["extensions"]["code"] == "VALIDATION_ERROR"

        rated = payload(
            await run(
                gql,
                RATE,
                conversation=busan["id"],
                message=turn["aiMessage"]["id"],
                rating="DOWN",
                comment="너무 짧아요",
            ),
            "setMessageFeedback",
        )
        assert rated["message"]["feedback"] == {"rating": "DOWN", "comment": "너무 짧아요"}
        history = (await run(gql, HISTORY, id=busan["id"]))["messages"]["nodes"]
        assert [node["feedback"] for node in history] == [None, {"rating": "DOWN"}]
        with pytest.raises(TransportQueryError) as hidden:
            await run(
                other, RATE, conversation=busan["id"], message=turn["aiMessage"]["id"], rating="UP"
            )
        assert hidden.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
