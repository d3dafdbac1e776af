"""sendMessage(onBusy: ENQUEUE): stored as QUEUED while a turn runs, answered after it;
the default stays TURN_IN_PROGRESS, with retryAfter."""

from __future__ import annotations

import asyncio

import pytest

from conversations.models import Conversation, ConversationMessage
from tests.support.graphql import error_codes

pytestmark = pytest.mark.django_db(transaction=True)

SEND = """
mutation Send($id: ID!, $content: String!, $onBusy: OnBusy) {
  sendMessage(conversationId: $id, content: $content, onBusy: $onBusy) {
    humanMessage { id status text }
    aiMessage { id }
  }
}
"""


async def test_send_message_may_queue(gql, token, conversation, llm):
    llm.reply_text(["slow ", "reply"], chunk_delay=0.2)
    llm.reply_text(["queued reply"])
    variables = {"id": str(conversation.pk)}
    await gql.data(SEND, {**variables, "content": "one"}, token=token)

    refused = await gql.execute(SEND, {**variables, "content": "two"}, token=token)
    assert error_codes(refused) == ["TURN_IN_PROGRESS"]
    assert refused["errors"][0]["extensions"]["retryAfter"] == 2
    queued = await gql.data(SEND, {**variables, "content": "two", "onBusy": "ENQUEUE"}, token=token)
    assert queued["sendMessage"]["humanMessage"]["status"] == "QUEUED"
    assert queued["sendMessage"]["aiMessage"] is None

    for _ in range(300):
        texts = [r.text async for r in ConversationMessage.objects.order_by("id")]
        idle = not (await Conversation.objects.aget(pk=conversation.pk)).active_turn_id
        if texts == ["one", "slow reply", "two", "queued reply"] and idle:
            break
        await asyncio.sleep(0.05)
    assert texts == ["one", "slow reply", "two", "queued reply"]
