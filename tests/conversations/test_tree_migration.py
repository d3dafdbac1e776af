"""Migration 0015: every existing conversation becomes one chain (parent = the previous
message by id), its last message the active leaf, in one statement per table."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Conversation, ConversationMessage

pytestmark = pytest.mark.django_db

migration = importlib.import_module("conversations.migrations.0015_message_tree")


def test_existing_conversations_become_chains(user, other_user, plain_agent):
    conversations = [
        services.create_conversation(user=owner, agent=plain_agent)
        for owner in (user, other_user, user)
    ]
    # Interleaved, as histories are: ids of one conversation are not contiguous.
    for index in range(4):
        for conversation in conversations[:2]:
            services.append_message(conversation=conversation, message=HumanMessage(f"q{index}"))
            services.append_message(conversation=conversation, message=AIMessage(f"a{index}"))
    empty = conversations[2]
    # As the rows were before the migration.
    ConversationMessage.objects.update(parent=None)
    Conversation.objects.update(active_leaf_id=None)

    with CaptureQueriesContext(connection) as queries, connection.cursor() as cursor:
        cursor.execute(migration.CHAIN_MESSAGES)
        cursor.execute(migration.ACTIVE_LEAVES)
    assert len(queries) == 2

    for conversation in conversations[:2]:
        rows = list(conversation.messages.order_by("id").values_list("id", "parent_id"))
        assert [parent for _, parent in rows] == [None, *[pk for pk, _ in rows[:-1]]]
        conversation.refresh_from_db()
        assert conversation.active_leaf_id == rows[-1][0]
        assert all(m.on_path for m in conversation.messages.all())
    empty.refresh_from_db()
    assert empty.active_leaf_id is None
    # A turn after the migration continues the chain.
    leaf = conversations[0].messages.order_by("-id").values_list("id", flat=True).first()
    start = services.begin_turn(conversation=conversations[0], content=HumanMessage("next"))
    assert start.human_message.parent_id == leaf
    conversations[0].refresh_from_db()
    assert start.ai_message.parent_id == start.human_message.pk
    assert conversations[0].active_leaf_id == start.ai_message.pk
