"""Conversation services: validation, writes, and the events they publish on commit."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from langchain_core.messages import HumanMessage

from conversations import services
from conversations.events import user_group
from conversations.models import Agent, Conversation
from core.errors import ValidationFailed

pytestmark = pytest.mark.django_db


def test_create_fills_defaults_and_keeps_given_values(user, tutor):
    conversation = services.create_conversation(
        user=user, agent=tutor, context={"언어": "일본어"}, title="  Tokyo  "
    )
    assert conversation.context == {
        "언어": "일본어",
        "상황": "스타벅스에서 커피를 주문하는 상황",
        "레벨": "초급",
    }
    assert conversation.title == "Tokyo"
    assert conversation.activity_at is not None


def test_unknown_and_missing_variables_are_named(user, db):
    agent = Agent.objects.create(
        slug="strict", name="Strict", system_prompt_template="Speak {language} about {topic}."
    )
    with pytest.raises(ValidationFailed) as error:
        services.create_conversation(
            user=user, agent=agent, context={"language": "fr", "mood": "x"}
        )
    assert set(error.value.fields) == {"context.mood", "context.topic"}
    assert error.value.fields["context.mood"][0]["code"] == "unknown_variable"
    assert error.value.fields["context.topic"][0]["code"] == "missing_variable"
    assert "mood" in error.value.detail and "topic" in error.value.detail
    assert not Conversation.objects.exists()


@pytest.mark.parametrize(
    "context",
    ["not an object", ["list"], {"언어": {"nested": 1}}, {"언어": True}, {"언어": "x" * 2001}],
)
def test_bad_context_values_are_validation_errors(user, tutor, context):
    with pytest.raises(ValidationFailed):
        services.create_conversation(user=user, agent=tutor, context=context)


def test_inactive_agent_cannot_start_conversations(user, plain_agent):
    plain_agent.is_active = False
    plain_agent.save()
    with pytest.raises(ValidationFailed):
        services.create_conversation(user=user, agent=plain_agent)


def test_update_archive_and_unarchive(conversation):
    services.update_conversation(conversation=conversation, title="New", archived=True)
    conversation.refresh_from_db()
    assert conversation.title == "New" and conversation.archived_at is not None
    services.set_archived(conversation=conversation, archived=False)
    conversation.refresh_from_db()
    assert conversation.archived_at is None
    with pytest.raises(ValidationFailed):
        services.update_conversation(conversation=conversation, archived="yes")
    with pytest.raises(ValidationFailed):
        services.update_conversation(conversation=conversation, title="x" * 201)


def test_update_context_is_validated(tutor_conversation):
    services.update_conversation(conversation=tutor_conversation, context={"레벨": "고급"})
    tutor_conversation.refresh_from_db()
    assert tutor_conversation.context["레벨"] == "고급"
    with pytest.raises(ValidationFailed):
        services.update_conversation(conversation=tutor_conversation, context={"nope": 1})


def test_append_message_counts_and_orders(conversation):
    first = services.append_message(conversation=conversation, message=HumanMessage("a"))
    second = services.append_message(conversation=conversation, message=HumanMessage("b"))
    conversation.refresh_from_db()
    assert second.id > first.id
    assert conversation.message_count == 2
    assert conversation.last_message_at is not None
    assert first.user_id == conversation.user_id


def test_delete_removes_messages(conversation):
    services.append_message(conversation=conversation, message=HumanMessage("a"))
    services.delete_conversation(conversation=conversation)
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.django_db(transaction=True)
async def test_events_are_published_after_commit(user, plain_agent):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(user_group(user.pk), channel)
    try:
        conversation = await sync_to_async(services.create_conversation)(
            user=user, agent=plain_agent, title="Hi"
        )
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        assert message["type"] == "confab.event"
        assert message["event"]["type"] == "conversation.created"
        assert message["event"]["conversation"]["id"] == conversation.pk
    finally:
        await layer.group_discard(user_group(user.pk), channel)


@pytest.mark.django_db(transaction=True)
async def test_nothing_is_published_for_a_rolled_back_write(user, plain_agent):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(user_group(user.pk), channel)

    def create_then_fail():
        with transaction.atomic():
            services.create_conversation(user=user, agent=plain_agent, title="Gone")
            raise RuntimeError("rollback")

    try:
        with pytest.raises(RuntimeError):
            await sync_to_async(create_then_fail)()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), timeout=0.5)
    finally:
        await layer.group_discard(user_group(user.pk), channel)
