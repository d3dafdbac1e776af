"""A mobile app's life through the generated SDK and its streaming helper, against a live
server (docs/clients.md, "A mobile app's life"): first load, a reply that streams while
the app goes to the background, coming back (sync, then resume the stream by
Last-Event-ID), push registration, and signing one device out."""

from __future__ import annotations

import uuid

import pytest

from tests.support.sdk import PASSWORD, expect, generated_sdk, sign_up
from tests.support.servers import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

WORDS = [f"word{i:02d} " for i in range(40)]
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/send/abc",
    "keys": {
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u"
        "-Ts1XbjhazAkj7I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg",
    },
}


@pytest.fixture(scope="module")
def sdk(tmp_path_factory):
    with generated_sdk(tmp_path_factory.mktemp("sdk")) as modules:
        yield modules


@pytest.fixture
def server(live_server_factory, seed_agents) -> LiveServer:
    # Its own cache namespace: rate-limit counters (register, login) start at zero.
    return live_server_factory(extra_env={"CONFAB_REDIS_PREFIX": f"mobile-{uuid.uuid4().hex}"})


def test_a_mobile_apps_life(sdk, server, llm):
    m = sdk.models
    streaming = sdk.streaming
    sync = sdk.sync
    phone = sign_up(sdk, server.url, f"mobile-{uuid.uuid4().hex[:8]}")
    username = expect(sdk.auth_me.sync(client=phone), m.User).username

    # First load: the conversation list, and the sync cursor to come back from.
    conversation = expect(
        sdk.conversations_create.sync(
            client=phone, body=m.ConversationCreateRequest(agent="assistant", title="Trip")
        ),
        m.Conversation,
    )
    assert [
        c.id for c in expect(sdk.conversations_list.sync(client=phone), m.ConversationPage).results
    ] == [conversation.id]
    cursor = expect(sync.sync(client=phone), m.ChangePage).cursor

    # A message; the reply streams (typed events) until the app goes to the background.
    llm.reply_text(WORDS, chunk_delay=0.05)
    text, last_id = "", None
    for event in streaming.send_message_events(
        phone, conversation.id, content="Plan my trip", client_message_id="trip-1"
    ):
        last_id = event.id
        if event.type == "message.delta":
            assert event.data.offset == len(text)
            text += event.data.delta
            if len(text) > 40:
                break  # backgrounded: the connection closes, the turn goes on
    reply_id = int(last_id.split(":")[0])
    assert ":" in last_id and text

    # Meanwhile the laptop (another device of the user) renames the conversation.
    laptop_token = expect(
        sdk.auth_token_create.sync(
            client=sdk.package.Client(base_url=server.url),
            body=m.TokenCreateRequest(username=username, password=PASSWORD, device_name="Laptop"),
        ),
        m.Token,
    )
    laptop = sdk.package.AuthenticatedClient(
        base_url=server.url, token=laptop_token.token, raise_on_unexpected_status=True
    )
    sdk.conversations_update.sync(
        conversation.id, client=laptop, body=m.ConversationUpdateRequest(title="Trip to Jeju")
    )

    # Coming back: sync first (what changed), then resume the stream where it stopped.
    changes = expect(sync.sync(client=phone, cursor=cursor), m.ChangePage)
    titles = [c.conversation.title for c in changes.changes if c.type_ == "conversation.upserted"]
    assert titles[-1] == "Trip to Jeju"
    final = None
    for event in streaming.conversation_events(phone, conversation.id, last_event_id=last_id):
        if event.type == "message.delta":
            assert event.data.message_id == reply_id and event.data.offset == len(text)
            text += event.data.delta
        elif event.type == "message.completed" and event.data.message.id == reply_id:
            final = event.data.message
            assert final.text.startswith(text)
            text = final.text
            break
    assert final is not None and text == "".join(WORDS)
    stored = expect(sdk.messages_retrieve.sync(conversation.id, reply_id, client=phone), m.Message)
    assert stored.text == text

    # Push: the phone registers for Web Push notifications on its own token.
    sdk.auth_push_set.sync(
        client=phone,
        body=m.PushCredentialRequest(
            platform=m.PushPlatform.WEBPUSH,
            subscription=SUBSCRIPTION,
        ),
    )
    devices = expect(sdk.auth_devices_list.sync(client=phone), m.DeviceList).results
    mine = next(d for d in devices if d.current)
    assert mine.push_platform == m.PushPlatform.WEBPUSH

    # Sign one device out: the laptop stops working at once, the phone keeps going.
    laptop_device = next(d for d in devices if d.device_name == "Laptop")
    sdk.auth_devices_revoke.sync_detailed(str(laptop_device.id), client=phone)
    refused = sdk.auth_me.sync(client=laptop)
    assert isinstance(refused, m.Error) and refused.code == "NOT_AUTHENTICATED"
    assert expect(sdk.auth_me.sync(client=phone), m.User).username == username
    remaining = {
        d.device_name
        for d in expect(sdk.auth_devices_list.sync(client=phone), m.DeviceList).results
    }
    assert "Laptop" not in remaining
