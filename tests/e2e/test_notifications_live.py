"""A live server sends the webhook of a reply that ended, from its background sender."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.receivers import WebhookReceiver, webhook_secret

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_a_turn_over_rest_reaches_the_webhook(live_server_factory, llm, token, conversation):
    secret = webhook_secret()
    with WebhookReceiver(secret).running() as receiver:
        server = live_server_factory(
            extra_env={"CONFAB_WEBHOOK_URL": receiver.url, "CONFAB_WEBHOOK_SECRET": secret}
        )
        llm.reply_text(["All ", "done."])
        response = httpx.post(
            f"{server.url}/api/v1/conversations/{conversation.pk}/messages/",
            json={"content": "Tell me when you are done"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        ai = response.json()["ai_message"]
        deadline = time.monotonic() + 15
        while not receiver.delivered_ids() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert receiver.failures == []
    assert receiver.delivered_ids() == [f"msg_{ai['id']}_complete"]
    (request,) = receiver.received
    assert request.payload["data"]["message"] == ai
