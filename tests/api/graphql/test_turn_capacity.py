"""Admission control over GraphQL: `sendMessage` beyond CONFAB_MAX_TURNS_PER_PROCESS is a
GraphQL error with extensions.code TURN_CAPACITY_REACHED and retryAfter; nothing stored."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.models import ConversationMessage
from conversations.turns import start_turn, wait_for_result
from conversations.turns.config import CAPACITY_RETRY_AFTER_SECONDS
from conversations.turns.engine import admitted_turn_count
from tests.support.graphql import SEND
from tests.support.turns import eventually

pytestmark = pytest.mark.django_db(transaction=True)


async def test_send_message_beyond_the_cap_is_a_graphql_error(
    gql, llm, token, user, plain_agent, settings
):
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 1
    busy = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    refused = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    llm.reply_text(["slow"], initial_delay=1.0)
    holding = await start_turn(conversation=busy, content="one")

    body = await gql.execute(SEND, {"id": refused.pk, "content": "two"}, token=token)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["path"] == ["sendMessage"]
    assert error["extensions"] == {
        "code": "TURN_CAPACITY_REACHED",
        "type": "service_unavailable",
        "retryAfter": CAPACITY_RETRY_AFTER_SECONDS,
    }
    assert await ConversationMessage.objects.filter(conversation_id=refused.pk).acount() == 0

    await wait_for_result(holding, timeout=10)
    await eventually(lambda: admitted_turn_count() == 0, what="the slot given back")
    llm.reply_text(["done"])
    sent = await gql.data(SEND, {"id": refused.pk, "content": "two"}, token=token)
    assert sent["sendMessage"]["errors"] == []
    assert sent["sendMessage"]["aiMessage"]["status"] == "STREAMING"
