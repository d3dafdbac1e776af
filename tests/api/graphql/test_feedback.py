"""Feedback over GraphQL: the same service and shape as REST."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from tests.support.graphql import ERRORS, db, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

SET = f"""
mutation($c: ID!, $m: ID!, $rating: FeedbackRating!, $comment: String) {{
  setMessageFeedback(conversationId: $c, messageId: $m, rating: $rating, comment: $comment) {{
    message {{ id feedback {{ rating comment updatedAt }} }} {ERRORS}
  }}
}}
"""
CLEAR = f"""
mutation($c: ID!, $m: ID!) {{
  clearMessageFeedback(conversationId: $c, messageId: $m) {{
    message {{ id feedback {{ rating }} }} {ERRORS}
  }}
}}
"""
MESSAGES = (
    "query($c: ID!) { messages(conversationId: $c) { nodes { id feedback { rating comment } } } }"
)


async def test_set_read_and_clear(gql, token, other_token, user, conversation):
    human = await db(services.append_message, conversation=conversation, message=HumanMessage("q"))
    ai = await db(services.append_message, conversation=conversation, message=AIMessage("a"))
    ids = {"c": str(conversation.pk), "m": str(ai.pk)}
    rated = (await gql.data(SET, {**ids, "rating": "DOWN", "comment": "no"}, token=token))[
        "setMessageFeedback"
    ]
    assert rated["errors"] == []
    assert rated["message"]["feedback"]["rating"] == "DOWN"
    nodes = (await gql.data(MESSAGES, {"c": ids["c"]}, token=token))["messages"]["nodes"]
    assert [n["feedback"] for n in nodes] == [None, {"rating": "DOWN", "comment": "no"}]

    body = await gql.execute(SET, {**ids, "rating": "UP"}, token=other_token)
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql.execute(SET, {**ids, "m": str(human.pk), "rating": "UP"}, token=token)
    assert error_codes(body) == ["FEEDBACK_NOT_ALLOWED"]

    cleared = (await gql.data(CLEAR, ids, token=token))["clearMessageFeedback"]
    assert cleared["message"]["feedback"] is None
