"""History reads never walk through other conversations' messages.

The hazard (found with bench/turn_cost.py's data, see bench/BENCHMARKS.md): a
conversation holding a large share of the table, followed by a block of messages of
another conversation. Asked for `conversation_id = X ORDER BY id`, PostgreSQL walked the
primary key backwards and threw away every message of the other conversation first. The
reads below match the conversation as a range and order by (conversation, id), which
only the history index provides (`selectors.in_history_order`, `history_pages.page_sql`);
each is checked with EXPLAIN ANALYZE on such a table, next to the plain form.
"""

from __future__ import annotations

import random
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from langchain_core.messages import HumanMessage

from conversations import history_pages, selectors
from conversations.codec import encode_message
from conversations.models import Conversation, ConversationMessage, MessageRole
from tests.support.requirements import needs_postgres

pytestmark = [pytest.mark.django_db, needs_postgres("checking PostgreSQL's query plans (EXPLAIN)")]

MINE = 3_000
INTERLEAVED_OTHERS = 7_000
BLOCK_AFTER = 6_000  # another conversation's messages, all newer than mine


@pytest.fixture
def busy_table(conversation, user, plain_agent) -> list[int]:
    """My conversation's message ids, on a table shaped as above (analyzed)."""
    others = Conversation.objects.bulk_create(
        [Conversation(user=user, agent=plain_agent) for _ in range(71)]
    )
    content = encode_message(HumanMessage("x"))
    owners = [conversation] * MINE + [others[i % 70] for i in range(INTERLEAVED_OTHERS)]
    random.Random(8).shuffle(owners)
    owners += [others[70]] * BLOCK_AFTER
    rows = [
        ConversationMessage(
            conversation=owner,
            user=user,
            role=MessageRole.HUMAN if i % 2 == 0 else MessageRole.AI,
            content=content,
            text="x",
        )
        for i, owner in enumerate(owners)
    ]
    ConversationMessage.objects.bulk_create(rows, batch_size=5_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_conversationmessage")
    return list(
        ConversationMessage.objects.filter(conversation=conversation)
        .order_by("id")
        .values_list("id", flat=True)
    )


def plan_of(sql: str, params: tuple | dict = ()) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def rows_discarded(plan: str) -> int:
    return sum(int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan))


def assert_no_primary_key_walk(sql: str, params: tuple | dict = ()) -> None:
    """The statement does not read the primary key in order hoping to meet its rows early
    (a primary-key read of a bounded id range, then sorted, is a cost PostgreSQL knows)."""
    plan = plan_of(sql, params)
    walks = "conversations_conversationmessage_pkey" in plan and "Sort Key" not in plan
    assert not walks, plan


def executed(read) -> str:
    with CaptureQueriesContext(connection) as queries:
        read()
    (query,) = [q["sql"] for q in queries.captured_queries if "conversationmessage" in q["sql"]]
    return query


def test_history_pages_read_only_their_conversation(busy_table, conversation, user):
    mine = busy_table
    page = {"conversation": conversation.pk, "owner": user.pk, "limit": 51}
    shapes = [
        (history_pages.NEWEST, page),
        (history_pages.BEFORE, {**page, "cursor": mine[1500]}),
        (history_pages.BEFORE, {**page, "cursor": mine[60]}),
        (history_pages.AFTER, {**page, "cursor": mine[-60]}),
    ]
    for shape, params in shapes:
        assert_no_primary_key_walk(history_pages.page_sql(shape), params)


def test_the_model_window_and_resume_read_only_their_conversation(busy_table, conversation):
    window = executed(
        lambda: list(
            selectors.history_window(
                conversation_id=conversation.pk, up_to_id=busy_table[-1], size=40
            )
        )
    )
    assert_no_primary_key_walk(window)
    resume = executed(
        lambda: list(
            selectors.messages_after(
                conversation_id=conversation.pk, after_id=busy_table[-30], limit=500
            )
        )
    )
    assert_no_primary_key_walk(resume)


def test_the_last_human_message_is_found_without_scanning_others(busy_table, conversation):
    last_human = executed(
        lambda: (
            selectors.in_history_order(conversation.pk, newest_first=True)
            .filter(role=MessageRole.HUMAN)
            .first()
        )
    )
    assert_no_primary_key_walk(last_human)


def test_the_plain_form_does_walk_through_the_others_on_this_table(busy_table, conversation):
    # What the reads above avoid: without it this table would not test anything.
    plain = executed(
        lambda: (
            ConversationMessage.objects.filter(conversation_id=conversation.pk)
            .order_by("-id")
            .first()
        )
    )
    assert rows_discarded(plan_of(plain)) >= BLOCK_AFTER
