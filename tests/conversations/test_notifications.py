"""Push and webhooks when a reply ends: the outbox, the sender, and real receivers.

Turns run through the services as the engine runs them; the sender
(`notifications.delivery`) sends to local receivers that check what the real ones
check: a Web Push endpoint that verifies VAPID and decrypts the payload with the
subscription's keys, and a webhook endpoint that verifies Standard Webhooks signatures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from django.db import connections
from langchain_core.messages import AIMessage, HumanMessage

from accounts.models import PushCredential
from conversations import presence, services
from conversations.notifications import delivery
from conversations.notifications.models import Notification, NotificationState
from tests.support.receivers import PushService, VapidKeys, WebhookReceiver, webhook_secret
from tests.support.tokens import make_token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def vapid(settings) -> VapidKeys:
    keys = VapidKeys.generate()
    settings.CONFAB_VAPID_PRIVATE_KEY = keys.private
    settings.CONFAB_VAPID_PUBLIC_KEY = keys.public
    settings.CONFAB_VAPID_SUBJECT = "mailto:ops@confab.test"
    # The test's push service listens on 127.0.0.1.
    settings.CONFAB_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = True
    return keys


def register_browser(user, push: PushService) -> PushCredential:
    from knox.models import get_token_model

    from accounts.services import register_push

    make_token(user, "Browser")
    token = get_token_model().objects.filter(user=user).latest("created")
    return register_push(token=token, platform="webpush", data=push.subscription())


def end_reply(conversation, text: str = "Done.", status: str = "complete") -> int:
    start = services.begin_turn(conversation=conversation, content=HumanMessage("hi"))
    services.finish_message(
        conversation_id=conversation.pk,
        turn_id=start.turn_id,
        message_id=start.ai_message.pk,
        message=AIMessage(text),
        status=status,
        release_lock=True,
    )
    return start.ai_message.pk


def test_a_reply_that_ends_is_pushed_to_the_browser(user, conversation, vapid):
    with PushService(vapid).running() as push:
        register_browser(user, push)
        message_id = end_reply(conversation, "Your answer is ready.")
        (row,) = Notification.objects.all()
        assert (row.channel, row.state) == ("webpush", NotificationState.PENDING)
        assert delivery.deliver_due() == 1
    (received,) = push.received
    assert push.failures == []
    assert received.payload == {
        "type": "message.completed",
        "conversation_id": conversation.pk,
        "conversation_title": conversation.title,
        "message_id": message_id,
        "status": "complete",
        "text": "Your answer is ready.",
    }
    assert Notification.objects.get().state == NotificationState.DELIVERED


def test_no_push_while_someone_follows_the_conversation_nor_for_a_cancel(user, conversation, vapid):
    with PushService(vapid).running() as push:
        register_browser(user, push)
        async_to_sync(presence.follow)(conversation.pk)
        end_reply(conversation)
        assert not Notification.objects.exists()
        async_to_sync(presence.unfollow)(conversation.pk)
        end_reply(conversation, status="cancelled")
        assert not Notification.objects.exists()
        end_reply(conversation, status="failed")
        assert Notification.objects.get().event_type == "message.failed"


def test_a_subscription_the_push_service_says_is_gone_is_removed(user, conversation, vapid):
    with PushService(vapid, answers=[410]).running() as push:
        register_browser(user, push)
        end_reply(conversation)
        assert delivery.deliver_due() == 0
    assert not PushCredential.objects.exists()
    assert not Notification.objects.exists()  # went with its device


def test_webhooks_are_signed_retried_and_delivered_once_per_event(user, conversation, settings):
    secret = webhook_secret()
    settings.CONFAB_WEBHOOK_SECRET = secret
    settings.CONFAB_NOTIFY_RETRY_SECONDS = 0.0
    # The receiver is down for its first three requests, then recovers.
    with WebhookReceiver(secret, answers=[503, 500, 502]).running() as receiver:
        settings.CONFAB_WEBHOOK_URL = receiver.url
        first = end_reply(conversation, "one")
        second = end_reply(conversation, "two")
        for _ in range(6):
            delivery.deliver_due()
    assert receiver.failures == []
    assert sorted(receiver.delivered_ids()) == sorted(
        [f"msg_{first}_complete", f"msg_{second}_complete"]
    )
    # Every attempt of one event carried the same id; failed attempts were retried.
    attempts = [request.headers["webhook-id"] for request in receiver.received]
    assert len(attempts) == 5 and set(attempts) == set(receiver.delivered_ids())
    payload = next(r.payload for r in receiver.received if r.status < 300)
    assert payload["type"] == "message.completed"
    assert payload["data"]["message"]["id"] in (first, second)
    assert payload["data"]["user_watching"] is False
    assert set(Notification.objects.values_list("state", flat=True)) == {"delivered"}
    # Nothing is sent again.
    assert delivery.deliver_due() == 0


def test_a_destination_that_never_recovers_is_dead_lettered(user, conversation, settings):
    secret = webhook_secret()
    settings.CONFAB_WEBHOOK_SECRET = secret
    settings.CONFAB_NOTIFY_RETRY_SECONDS = 0.0
    settings.CONFAB_NOTIFY_MAX_ATTEMPTS = 3
    with WebhookReceiver(secret, answers=[500] * 10).running() as receiver:
        settings.CONFAB_WEBHOOK_URL = receiver.url
        end_reply(conversation)
        for _ in range(5):
            delivery.deliver_due()
    row = Notification.objects.get()
    assert (row.state, row.attempts, row.last_error) == ("dead", 3, "HTTP 500")
    assert len(receiver.received) == 3


def test_two_senders_never_claim_the_same_row(user, plain_agent, settings):
    settings.CONFAB_WEBHOOK_SECRET = webhook_secret()
    settings.CONFAB_WEBHOOK_URL = "http://127.0.0.1:9/hooks"
    for index in range(40):
        conversation = services.create_conversation(user=user, agent=plain_agent, title=str(index))
        end_reply(conversation)

    def claim() -> list[int]:
        try:
            return [row.pk for row in delivery.claim_due(limit=15)]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        claims = list(pool.map(lambda _: claim(), range(4)))
    taken = [pk for batch in claims for pk in batch]
    assert len(taken) == len(set(taken)) == 40
