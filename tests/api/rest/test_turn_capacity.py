"""Admission control over REST: a turn beyond CONFAB_MAX_TURNS_PER_PROCESS is a 503
TURN_CAPACITY_REACHED with Retry-After, in the one error shape, and stores nothing."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.models import ConversationMessage
from conversations.turns import start_turn, wait_for_result
from conversations.turns.config import CAPACITY_RETRY_AFTER_SECONDS
from conversations.turns.engine import admitted_turn_count
from tests.support.rest import assert_error, bearer
from tests.support.turns import eventually

pytestmark = pytest.mark.django_db(transaction=True)

SSE = {"Accept": "text/event-stream"}


def messages_url(conversation_id: int) -> str:
    return f"/api/v1/conversations/{conversation_id}/messages/"


async def test_a_turn_beyond_the_cap_is_503_with_retry_after(
    asgi, llm, token, user, plain_agent, settings
):
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 1
    busy = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    refused = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    llm.reply_text(["slow"], initial_delay=1.0)
    # A turn holds the one slot (started on any surface: they all share it).
    holding = await start_turn(conversation=busy, content="one")

    for headers in (bearer(token), {**bearer(token), **SSE}):
        response = await asgi.post(
            messages_url(refused.pk),
            json={"content": "two", "client_message_id": "r-2"},
            headers=headers,
        )
        body = assert_error(response, 503, "TURN_CAPACITY_REACHED")
        assert body["type"] == "service_unavailable"
        assert response.headers["Retry-After"] == str(CAPACITY_RETRY_AFTER_SECONDS)
    regenerate = await asgi.post(
        f"/api/v1/conversations/{busy.pk}/regenerate/", headers=bearer(token)
    )
    assert_error(regenerate, 503, "TURN_CAPACITY_REACHED")
    assert await ConversationMessage.objects.filter(conversation_id=refused.pk).acount() == 0

    await wait_for_result(holding, timeout=10)
    await eventually(lambda: admitted_turn_count() == 0, what="the slot given back")
    llm.reply_text(["done"])
    retried = await asgi.post(
        messages_url(refused.pk),
        json={"content": "two", "client_message_id": "r-2"},
        headers=bearer(token),
    )
    assert retried.status_code == 201
    assert retried.json()["ai_message"]["text"] == "done"
