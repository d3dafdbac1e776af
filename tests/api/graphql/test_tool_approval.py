"""Tool approval over GraphQL: the pause as a ToolApprovalRequested subscription event,
approveToolCall / denyToolCall, 409 and 404 as GraphQL errors."""

from __future__ import annotations

import pytest

from conversations.services import create_conversation
from tests.support.approvals import guarded_agent, paused, turn_ended
from tests.support.fakeopenai import ToolCall
from tests.support.graphql import GraphQLSocket, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = """
subscription($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename
    ... on MessageCompleted { message { id status text } }
    ... on ToolApprovalRequested {
      conversationId messageId turnId calls { callId name arguments decision deadline }
    }
    ... on ToolApprovalDecided { messageId call { callId decision decidedBy reason } }
  }
}
"""
SEND = """
mutation($id: ID!) {
  sendMessage(conversationId: $id, content: "6*7?") { aiMessage { id status } errors { code } }
}
"""
PENDING = """
query($id: ID!) { pendingToolCalls(conversationId: $id) { callId name arguments } }
"""
APPROVE = """
mutation($id: ID!, $call: ID!) {
  approveToolCall(conversationId: $id, callId: $call) {
    toolCall { callId name decision decidedBy } errors { code }
  }
}
"""
DENY = """
mutation($id: ID!, $call: ID!, $reason: String) {
  denyToolCall(conversationId: $id, callId: $call, reason: $reason) {
    toolCall { callId decision reason } errors { code }
  }
}
"""


async def events_until(socket: GraphQLSocket, typename: str) -> list[dict]:
    events = []
    for _ in range(100):
        event = (await socket.next_data("1"))["conversationEvents"]
        events.append(event)
        if event["__typename"] == typename:
            return events
    raise AssertionError(events)


@pytest.fixture
def conversation(user):
    return create_conversation(user=user, agent=guarded_agent(), title="Approval")


async def test_pause_subscription_and_approve(gql, token, other_token, conversation, llm):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="call_g")])
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("1", EVENTS, {"id": conversation.pk})
    await socket.next_data("1")  # the snapshot
    await gql.data(SEND, {"id": conversation.pk}, token=token)
    events = await events_until(socket, "ToolApprovalRequested")
    requested = events[-1]
    assert [e["message"]["status"] for e in events if e["__typename"] == "MessageCompleted"] == [
        "AWAITING_APPROVAL"
    ]
    assert requested["calls"][0]["callId"] == "call_g"
    assert requested["calls"][0]["arguments"] == {"expression": "6*7"}
    assert requested["calls"][0]["decision"] is None and requested["calls"][0]["deadline"]

    pending = await gql.data(PENDING, {"id": conversation.pk}, token=token)
    assert pending["pendingToolCalls"] == [
        {"callId": "call_g", "name": "calculator", "arguments": {"expression": "6*7"}}
    ]
    theirs = await gql.execute(PENDING, {"id": conversation.pk}, token=other_token)
    assert error_codes(theirs) == ["NOT_FOUND"]

    # Another user: not found.
    theirs = await gql.execute(
        APPROVE, {"id": conversation.pk, "call": "call_g"}, token=other_token
    )
    assert error_codes(theirs) == ["NOT_FOUND"]

    llm.reply_text(["42."])
    approved = await gql.data(APPROVE, {"id": conversation.pk, "call": "call_g"}, token=token)
    assert approved["approveToolCall"]["toolCall"] == {
        "callId": "call_g",
        "name": "calculator",
        "decision": "approved",
        "decidedBy": "user",
    }
    decided = await events_until(socket, "ToolApprovalDecided")
    assert decided[-1]["call"]["decision"] == "approved"
    final = [
        e
        for e in await events_until(socket, "MessageCompleted")
        + await events_until(socket, "MessageCompleted")
        if e["__typename"] == "MessageCompleted"
    ]
    assert final[-1]["message"]["text"] == "42."
    await turn_ended(conversation)
    assert (await gql.data(PENDING, {"id": conversation.pk}, token=token))["pendingToolCalls"] == []

    again = await gql.execute(DENY, {"id": conversation.pk, "call": "call_g"}, token=token)
    assert error_codes(again) == ["TOOL_CALL_ALREADY_DECIDED"]
    await socket.close()


async def test_deny_with_a_reason(gql, token, conversation, llm):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="call_n")])
    await gql.data(SEND, {"id": conversation.pk}, token=token)
    await paused(conversation)  # sendMessage returns before the reply
    llm.reply_text(["OK."])
    denied = await gql.data(
        DENY, {"id": conversation.pk, "call": "call_n", "reason": "later"}, token=token
    )
    assert denied["denyToolCall"]["toolCall"] == {
        "callId": "call_n",
        "decision": "denied",
        "reason": "later",
    }
    await turn_ended(conversation)
    assert llm.requests[1].messages[-1]["content"].endswith("The user said: later")
