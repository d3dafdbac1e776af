"""The event shapes of conversations/events.py, as a live surface receives them from the layer.

Message events go to the conversation's group; `conversation.*` events go there
and to the owner's user group.
"""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.events import conversation_group, user_group
from conversations.models import Conversation
from conversations.turns import start_turn, wait_for_result
from tests.support.shapes import MESSAGE_FIELDS
from tests.support.turns import GroupListener, turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE_KEYS = set(MESSAGE_FIELDS)
CONVERSATION_KEYS = {
    "id",
    "title",
    "agent",
    "context",
    "model",
    "temperature",
    "archived",
    "archived_at",
    "last_message_at",
    "message_count",
    "active_turn_id",
    "project",
    "pinned",
    "active_leaf_id",
    "created_at",
    "updated_at",
}


def assert_message_event(event, conversation_id):
    expected = {"type", "conversation_id", "message"}
    if event["type"] == "message.failed":
        expected.add("error")
    assert set(event) == expected
    assert event["conversation_id"] == conversation_id
    assert set(event["message"]) == MESSAGE_KEYS
    assert event["message"]["conversation"] == conversation_id
    assert event["message"]["created_at"].endswith("Z")


def assert_conversation_event(event, conversation_id):
    assert set(event) == {"type", "conversation_id", "conversation"}
    assert event["conversation_id"] == conversation_id
    assert set(event["conversation"]) == CONVERSATION_KEYS
    assert event["conversation"]["id"] == conversation_id


async def test_a_turns_events_in_order_and_shape(llm, conversation, user):
    llm.reply_text(["Hello", " there"], usage=(5, 2), chunk_delay=0.05)
    async with (
        GroupListener(conversation_group(conversation.pk)) as conv_events,
        GroupListener(user_group(user.pk)) as user_events,
    ):
        handle = await start_turn(conversation=conversation, content="hi", client_message_id="cm-1")
        await wait_for_result(handle, timeout=10)
        await conv_events.until(
            lambda e: (
                e["type"] == "conversation.updated" and e["conversation"]["active_turn_id"] is None
            )
        )
        await user_events.drain(quiet=0.3)

    types = [e["type"] for e in conv_events.events]
    assert types[:3] == ["message.created", "message.created", "conversation.updated"]
    assert types[-2:] == ["message.completed", "conversation.updated"]
    assert set(types[3:-2]) == {"message.delta"}

    human, ai = conv_events.events[0], conv_events.events[1]
    for event in (human, ai):
        assert_message_event(event, conversation.pk)
    assert human["message"]["role"] == "human" and human["message"]["client_message_id"] == "cm-1"
    assert human["message"]["content"] == {
        "_type": "HumanMessage",
        "_value": human["message"]["content"]["_value"],
    }
    assert ai["message"]["status"] == "streaming" and ai["message"]["text"] == ""
    started = conv_events.events[2]
    assert_conversation_event(started, conversation.pk)
    assert started["conversation"]["active_turn_id"] == str(handle.turn_id)
    assert started["conversation"]["message_count"] == 2

    for delta in conv_events.of_type("message.delta"):
        assert set(delta) == {"type", "conversation_id", "message_id", "index", "offset", "delta"}
        assert delta["message_id"] == handle.ai_message.pk

    completed = conv_events.events[-2]
    assert_message_event(completed, conversation.pk)
    assert completed["message"]["id"] == handle.ai_message.pk
    assert completed["message"]["status"] == "complete"
    assert completed["message"]["text"] == "Hello there"
    assert completed["message"]["usage"] == {
        "input_tokens": 5,
        "output_tokens": 2,
        "total_tokens": 7,
    }
    assert completed["message"]["turn_id"] == str(handle.turn_id)

    # The user's group hears only about the conversation, not its messages.
    assert {e["type"] for e in user_events.events} == {"conversation.updated"}
    for event in user_events.events:
        assert_conversation_event(event, conversation.pk)


async def test_failed_and_branch_events(llm, conversation):
    llm.reply_text(["first"])
    llm.reply_error(500)
    await wait_for_result(await start_turn(conversation=conversation, content="q"), timeout=10)
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        handle = await start_turn(conversation=conversation, regenerate=True)
        await wait_for_result(handle, timeout=10)
        failed = await listener.until_type("message.failed")
    # Nothing is deleted: the new reply is a sibling of the first one, and the active leaf.
    assert listener.of_type("message.deleted") == []
    (switched,) = listener.of_type("conversation.branch_changed")
    assert set(switched) == {"type", "conversation_id", "active_leaf_id", "conversation"}
    assert switched["active_leaf_id"] == handle.ai_message.pk == failed["message"]["id"]
    assert switched["conversation"]["active_leaf_id"] == handle.ai_message.pk
    assert len(failed["message"]["siblings"]["ids"]) == 2
    assert failed["message"]["siblings"]["index"] == 1
    assert_message_event(failed, conversation.pk)
    assert failed["error"] == {"code": "provider_error", "message": failed["error"]["message"]}
    assert failed["message"]["error"] == failed["error"]
    assert failed["message"]["status"] == "failed"
    # Regenerate publishes no new human message: only the new AI placeholder.
    created = listener.of_type("message.created")
    assert [e["message"]["role"] for e in created] == ["ai"]


async def test_conversation_lifecycle_events_reach_the_user_group(user, plain_agent):
    async with GroupListener(user_group(user.pk)) as listener:
        conversation = await sync_to_async(services.create_conversation)(
            user=user, agent=plain_agent, title="Lifecycle"
        )
        created = await listener.until_type("conversation.created")
        await sync_to_async(services.update_conversation)(conversation=conversation, title="New")
        updated = await listener.until_type("conversation.updated")
        await sync_to_async(services.clear_conversation)(conversation=conversation)
        cleared = await listener.until_type("conversation.cleared")
        await sync_to_async(services.delete_conversation)(conversation=conversation)
        deleted = await listener.until_type("conversation.deleted")
    for event in (created, updated, cleared, deleted):
        assert_conversation_event(event, created["conversation_id"])
    assert created["conversation"]["agent"] == "plain"
    assert updated["conversation"]["title"] == "New"
    assert cleared["conversation"]["message_count"] == 0
    assert not await Conversation.objects.filter(pk=created["conversation_id"]).aexists()


def test_an_outage_of_the_layer_is_logged_once_then_counted_then_ended(caplog):
    from conversations.events import DeliveryFailures

    failures = DeliveryFailures()
    with caplog.at_level(logging.WARNING, logger="conversations.events"):
        for _ in range(50):
            try:
                raise ConnectionError("Redis is down")
            except ConnectionError:
                failures.failed("message.delta")
        failures.last_logged -= failures.SUMMARY_SECONDS  # a minute later
        failures.failed("message.delta")
        failures.delivered()
        failures.delivered()  # nothing more to say
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3, messages
    assert messages[0].startswith("Live delivery of message.delta failed")
    assert caplog.records[0].exc_info is not None
    assert messages[1].startswith("Live delivery still failing: 51 events")
    assert messages[2].startswith("Live delivery works again after")
    assert "51 events were not delivered live" in messages[2]
