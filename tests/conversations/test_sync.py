"""The changes feed (conversations/sync): recorded by every write, replayed into the database.

Writes go through the services as every surface's do; the feed is read as REST and
GraphQL read it (`sync.selectors.changes_page` + `payloads.change_payload`).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.payloads import change_payload
from conversations.sync import selectors as sync
from conversations.sync.models import Change, SyncCounter
from conversations.sync.services import compact_changes
from tests.support.sync import Replica, database_state

pytestmark = pytest.mark.django_db


def read_all(user, after: int = 0, size: int = 50) -> tuple[list[dict], int]:
    """Every change after `after`, page by page; returns them and the last cursor."""
    changes = []
    while True:
        page = sync.changes_page(user=user, after=after, size=size)
        changes += [change_payload(change) for change in page.changes]
        after = page.cursor
        if not page.has_more:
            return changes, after


def test_a_first_sync_starts_at_the_newest_change(user, plain_agent):
    assert sync.current_seq(user=user) == 0
    conversation = services.create_conversation(user=user, agent=plain_agent, title="a")
    services.update_conversation(conversation=conversation, title="b")
    assert sync.current_seq(user=user) == 2
    assert sync.changes_page(user=user, after=2, size=10).changes == []


def test_replaying_the_feed_rebuilds_the_users_data(user, other_user, plain_agent):
    replica = Replica()
    first = services.create_conversation(user=user, agent=plain_agent, title="first")
    second = services.create_conversation(user=user, agent=plain_agent, title="second")
    services.create_conversation(user=other_user, agent=plain_agent, title="not mine")
    for text in ("q1", "q2"):
        services.append_message(conversation=first, message=HumanMessage(text))
        services.append_message(conversation=first, message=AIMessage(f"a-{text}"))
    changes, cursor = read_all(user)
    replica.apply_all(changes)
    assert replica.state() == database_state(user)

    # A turn, a regenerate, a rename, an archive, a clear and a delete, read in two pages.
    start = services.begin_turn(conversation=second, content=HumanMessage("hello"))
    services.finish_message(
        conversation_id=second.pk,
        turn_id=start.turn_id,
        message_id=start.ai_message.pk,
        message=AIMessage("hi there"),
        status="complete",
        release_lock=True,
    )
    again = services.begin_turn(conversation=second, content=None, regenerate=True)
    services.finish_message(
        conversation_id=second.pk,
        turn_id=again.turn_id,
        message_id=again.ai_message.pk,
        message=AIMessage("hello again"),
        status="complete",
        release_lock=True,
    )
    services.update_conversation(conversation=second, title="renamed", archived=True)
    services.clear_conversation(conversation=first)
    services.append_message(conversation=first, message=HumanMessage("after the clear"))
    third = services.create_conversation(user=user, agent=plain_agent, title="short-lived")
    services.append_message(conversation=third, message=HumanMessage("gone soon"))
    services.delete_conversation(conversation=third)
    changes, _ = read_all(user, after=cursor, size=3)
    kinds = {change["type"] for change in changes}
    assert kinds == {
        "conversation.upserted",
        "conversation.cleared",
        "conversation.deleted",
        "message.upserted",
    }
    replica.apply_all(changes)
    assert replica.state() == database_state(user)
    # The regenerate kept the first reply: both are the human message's children.
    kept = [m for m in replica.messages.values() if m["conversation"] == second.pk]
    assert [m["text"] for m in kept] == ["hello", "hi there", "hello again"]
    both = [kept[1]["id"], kept[2]["id"]]
    assert kept[1]["siblings"] == {"ids": both, "index": 0}
    assert kept[2]["siblings"] == {"ids": both, "index": 1}


def test_someone_elses_changes_never_appear(user, other_user, plain_agent):
    services.create_conversation(user=other_user, agent=plain_agent, title="theirs")
    assert read_all(user)[0] == []


def test_upserts_of_objects_gone_since_are_left_out(user, plain_agent):
    conversation = services.create_conversation(user=user, agent=plain_agent)
    services.append_message(conversation=conversation, message=HumanMessage("x"))
    conversation_id = conversation.pk
    services.delete_conversation(conversation=conversation)
    changes, _ = read_all(user)
    assert changes == [{"type": "conversation.deleted", "id": conversation_id}]


def test_a_write_records_its_changes_in_one_statement(user, plain_agent):
    conversation = services.create_conversation(user=user, agent=plain_agent)
    with CaptureQueriesContext(connection) as queries:
        start = services.begin_turn(conversation=conversation, content=HumanMessage("hi"))
    # A turn's start is four changes (two messages, the conversation): one statement on
    # PostgreSQL, the counter and the rows on SQLite.
    tables = (Change._meta.db_table, SyncCounter._meta.db_table)
    feed = [q for q in queries.captured_queries if any(t in q["sql"] for t in tables)]
    assert len(feed) == (1 if connection.vendor == "postgresql" else 2), feed
    assert sync.current_seq(user=user) == 1 + 3  # the creation, then the turn's three
    assert start.turn_id


def test_a_page_of_500_changes_is_one_query(user, plain_agent):
    conversation = services.create_conversation(user=user, agent=plain_agent)
    for index in range(250):
        services.append_message(conversation=conversation, message=HumanMessage(f"m{index}"))
    with CaptureQueriesContext(connection) as queries:
        page = sync.changes_page(user=user, after=0, size=500)
        payloads = [change_payload(change) for change in page.changes]
    assert len(queries) == 1
    # Each append is a message and a conversation change: the conversation, whose
    # state is read as it is now, appears once per append.
    assert len(payloads) == 500 and page.has_more


def test_cursors_older_than_the_retention_expire(user, plain_agent, settings):
    conversation = services.create_conversation(user=user, agent=plain_agent, title="old")
    services.update_conversation(conversation=conversation, title="older")
    Change.objects.update(created_at=timezone.now() - timedelta(days=40))
    services.update_conversation(conversation=conversation, title="new")
    assert compact_changes() == 2
    with pytest.raises(sync.SyncCursorExpired):
        sync.changes_page(user=user, after=0, size=10)
    with pytest.raises(sync.SyncCursorExpired):
        sync.changes_page(user=user, after=1, size=10)
    page = sync.changes_page(user=user, after=2, size=10)
    assert [change_payload(c)["conversation"]["title"] for c in page.changes] == ["new"]
