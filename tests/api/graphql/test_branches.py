"""Branches over GraphQL: editMessage, regenerate, switchBranch, forkConversation, the
`parentId`/`siblings` fields, paging the active branch, and ConversationBranchChanged on
the subscription."""

from __future__ import annotations

import pytest

from tests.support.graphql import (
    ERRORS,
    SEND,
    GraphQLSocket,
    error_codes,
    wait_until_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = "id text role parentId siblings { ids index }"
EDIT = f"""
mutation($id: ID!, $messageId: ID!, $content: String!) {{
  editMessage(conversationId: $id, messageId: $messageId, content: $content) {{
    humanMessage {{ {MESSAGE} }} aiMessage {{ {MESSAGE} }} {ERRORS}
  }}
}}
"""
REGENERATE = f"""
mutation($id: ID!) {{ regenerate(conversationId: $id) {{ aiMessage {{ {MESSAGE} }} {ERRORS} }} }}
"""
SWITCH = f"""
mutation($id: ID!, $messageId: ID!) {{
  switchBranch(id: $id, messageId: $messageId) {{
    conversation {{ id activeLeafId lastMessage {{ id text }} }} {ERRORS}
  }}
}}
"""
FORK = f"""
mutation($id: ID!, $messageId: ID!) {{
  forkConversation(id: $id, messageId: $messageId) {{
    conversation {{ id messageCount activeLeafId }} {ERRORS}
  }}
}}
"""
PAGE = f"""
query($id: ID!, $last: Int, $before: String) {{
  messages(conversationId: $id, last: $last, before: $before) {{
    nodes {{ {MESSAGE} }}
    pageInfo {{ hasPreviousPage startCursor }}
  }}
}}
"""
EVENTS = """
subscription($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename
    ... on ConversationBranchChanged { conversationId activeLeafId conversation { activeLeafId } }
  }
}
"""


async def texts(gql, token, conversation_id, **variables) -> list[str]:
    data = await gql.data(PAGE, {"id": conversation_id, "last": 50, **variables}, token=token)
    return [node["text"] for node in data["messages"]["nodes"]]


async def test_edit_regenerate_twice_switch_back_and_page(gql, token, conversation, llm):
    for reply in ("a1", "a2", "a2 edited", "again 1", "again 2"):
        llm.reply_text([reply])
    ids = {}
    for question in ("q1", "q2"):
        sent = await gql.data(SEND, {"id": conversation.pk, "content": question}, token=token)
        ids[question] = sent["sendMessage"]
        await wait_until_idle(conversation.pk)

    edited = (
        await gql.data(
            EDIT,
            {
                "id": conversation.pk,
                "messageId": ids["q2"]["humanMessage"]["id"],
                "content": "q2 edited",
            },
            token=token,
        )
    )["editMessage"]
    assert edited["errors"] == []
    human = edited["humanMessage"]
    assert human["parentId"] == ids["q1"]["aiMessage"]["id"]
    assert human["siblings"] == {"ids": [ids["q2"]["humanMessage"]["id"], human["id"]], "index": 1}
    await wait_until_idle(conversation.pk)

    replies = [edited["aiMessage"]["id"]]
    for _ in range(2):
        again = (await gql.data(REGENERATE, {"id": conversation.pk}, token=token))["regenerate"]
        assert again["errors"] == []
        replies.append(again["aiMessage"]["id"])
        await wait_until_idle(conversation.pk)
    assert again["aiMessage"]["siblings"] == {"ids": replies, "index": 2}
    assert await texts(gql, token, conversation.pk) == ["q1", "a1", "q2 edited", "again 2"]

    switched = (
        await gql.data(
            SWITCH,
            {"id": conversation.pk, "messageId": ids["q2"]["humanMessage"]["id"]},
            token=token,
        )
    )["switchBranch"]
    assert switched["errors"] == []
    assert switched["conversation"]["activeLeafId"] == ids["q2"]["aiMessage"]["id"]
    assert switched["conversation"]["lastMessage"]["text"] == "a2"
    page = await gql.data(PAGE, {"id": conversation.pk, "last": 2}, token=token)
    assert [n["text"] for n in page["messages"]["nodes"]] == ["q2", "a2"]
    assert page["messages"]["pageInfo"]["hasPreviousPage"]
    before = page["messages"]["pageInfo"]["startCursor"]
    assert await texts(gql, token, conversation.pk, before=before) == ["q1", "a1"]


async def test_fork_and_errors(gql, token, other_token, conversation, llm):
    llm.reply_text(["a1"])
    sent = (await gql.data(SEND, {"id": conversation.pk, "content": "q1"}, token=token))[
        "sendMessage"
    ]
    await wait_until_idle(conversation.pk)
    fork = (
        await gql.data(
            FORK, {"id": conversation.pk, "messageId": sent["humanMessage"]["id"]}, token=token
        )
    )["forkConversation"]
    assert fork["errors"] == []
    assert fork["conversation"]["messageCount"] == 1
    assert await texts(gql, token, fork["conversation"]["id"]) == ["q1"]

    # Editing an AI message: an input error on messageId.
    not_human = (
        await gql.data(
            EDIT,
            {"id": conversation.pk, "messageId": sent["aiMessage"]["id"], "content": "x"},
            token=token,
        )
    )["editMessage"]
    assert [e["field"] for e in not_human["errors"]] == ["messageId"]
    # Someone else's conversation, or a message that is not there: NOT_FOUND.
    for query, variables, who in (
        (SWITCH, {"id": conversation.pk, "messageId": sent["aiMessage"]["id"]}, other_token),
        (FORK, {"id": conversation.pk, "messageId": sent["aiMessage"]["id"]}, other_token),
        (EDIT, {"id": conversation.pk, "messageId": "999999", "content": "x"}, token),
        (SWITCH, {"id": conversation.pk, "messageId": "999999"}, token),
    ):
        body = await gql.execute(query, variables, token=who)
        assert error_codes(body) == ["NOT_FOUND"], body


async def test_a_switch_reaches_the_subscription(gql, token, conversation, llm):
    llm.reply_text(["one"])
    llm.reply_text(["two"])
    sent = (await gql.data(SEND, {"id": conversation.pk, "content": "q"}, token=token))[
        "sendMessage"
    ]
    await wait_until_idle(conversation.pk)
    await gql.data(REGENERATE, {"id": conversation.pk}, token=token)
    await wait_until_idle(conversation.pk)
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("1", EVENTS, {"id": conversation.pk})
    assert (await socket.next_data("1"))["conversationEvents"]["__typename"] == (
        "ConversationUpdated"
    )
    await gql.data(
        SWITCH, {"id": conversation.pk, "messageId": sent["aiMessage"]["id"]}, token=token
    )
    for _ in range(5):
        event = (await socket.next_data("1"))["conversationEvents"]
        if event["__typename"] == "ConversationBranchChanged":
            break
    assert event == {
        "__typename": "ConversationBranchChanged",
        "conversationId": str(conversation.pk),
        "activeLeafId": sent["aiMessage"]["id"],
        "conversation": {"activeLeafId": sent["aiMessage"]["id"]},
    }
    await socket.close()
