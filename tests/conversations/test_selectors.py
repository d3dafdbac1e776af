"""Selectors: owner scoping and keyset pages that never count or offset the history."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext
from langchain_core.messages import AIMessage, HumanMessage

from conversations import inputs, selectors, services
from conversations.codec import encode_message
from conversations.models import Conversation, ConversationMessage
from core.errors import NotFound, ValidationFailed

pytestmark = pytest.mark.django_db


def fill(conversation: Conversation, count: int) -> list[int]:
    rows = [
        ConversationMessage(
            conversation=conversation,
            user_id=conversation.user_id,
            role="human",
            content=encode_message(HumanMessage(f"m{i}")),
            text=f"m{i}",
        )
        for i in range(count)
    ]
    return [row.id for row in ConversationMessage.objects.bulk_create(rows)]


# Surfaces parse what clients send (conversations.inputs), then select: so do these.


def message_page(*, conversation, before=None, after=None, limit=None):
    request = inputs.parse_history_request(before=before, after=after, limit=limit)
    return selectors.message_page(conversation=conversation, request=request)


def user_message_page(*, user, conversation_id, before=None, after=None, limit=None):
    request = selectors.parse_for_conversation(
        lambda: inputs.parse_history_request(before=before, after=after, limit=limit),
        user=user,
        conversation_id=conversation_id,
    )
    return selectors.user_message_page(user=user, conversation_id=conversation_id, request=request)


def conversation_page(*, user, cursor=None, limit=None, **filters):
    return selectors.conversation_page(
        user=user,
        cursor=inputs.parse_conversation_cursor(cursor),
        size=inputs.parse_limit(limit),
        filters=filters,
    )


def page_ids(page) -> list[int]:
    return [row.id for row in page.results]


def test_empty_conversation(conversation):
    page = message_page(conversation=conversation)
    assert page.results == [] and not page.has_older and not page.has_newer
    assert page.older_cursor is None and page.newer_cursor is None


def test_exactly_one_page(conversation):
    ids = fill(conversation, 5)
    page = message_page(conversation=conversation, limit=5)
    assert page_ids(page) == ids
    assert not page.has_older and not page.has_newer


def test_newest_page_is_default_and_chronological(conversation):
    ids = fill(conversation, 12)
    page = message_page(conversation=conversation, limit=5)
    assert page_ids(page) == ids[-5:]
    assert page.has_older and not page.has_newer
    assert page.older_cursor == ids[-5]


def test_walk_back_and_forward_covers_everything_once(conversation):
    ids = fill(conversation, 23)
    seen: list[int] = []
    page = message_page(conversation=conversation, limit=5)
    seen = page_ids(page) + seen
    while page.has_older:
        page = message_page(conversation=conversation, before=page.older_cursor, limit=5)
        seen = page_ids(page) + seen
        assert page.has_newer
    assert seen == ids
    forward: list[int] = []
    page = message_page(conversation=conversation, after=0, limit=7)
    forward += page_ids(page)
    while page.has_newer:
        page = message_page(conversation=conversation, after=page.newer_cursor, limit=7)
        forward += page_ids(page)
        assert page.has_older
    assert forward == ids


def test_cursor_at_first_and_last_message(conversation):
    ids = fill(conversation, 10)
    before_first = message_page(conversation=conversation, before=ids[0])
    assert before_first.results == [] and not before_first.has_older and before_first.has_newer
    after_last = message_page(conversation=conversation, after=ids[-1])
    assert after_last.results == [] and after_last.has_older and not after_last.has_newer
    at_last = message_page(conversation=conversation, before=ids[-1], limit=3)
    assert page_ids(at_last) == ids[-4:-1] and at_last.has_newer and at_last.has_older


def test_cursor_of_a_deleted_message_still_pages(conversation):
    ids = fill(conversation, 10)
    ConversationMessage.objects.filter(pk=ids[5]).delete()
    older = message_page(conversation=conversation, before=ids[5], limit=3)
    assert page_ids(older) == ids[2:5]
    assert older.has_newer and older.has_older
    newer = message_page(conversation=conversation, after=ids[5], limit=10)
    assert page_ids(newer) == ids[6:]
    assert newer.has_older and not newer.has_newer


@pytest.mark.parametrize("limit", [0, -1, "abc", "1.5", 1.5, 10**9, "", None, True])
def test_limit_validation(conversation, limit, settings):
    fill(conversation, 3)
    if limit in ("", None):
        page = message_page(conversation=conversation, limit=limit)
        assert len(page.results) == 3
        return
    with pytest.raises(ValidationFailed) as error:
        message_page(conversation=conversation, limit=limit)
    assert "limit" in error.value.fields


def test_limit_cap_is_a_setting(conversation, settings):
    settings.CONFAB_MAX_PAGE_SIZE = 4
    fill(conversation, 6)
    assert len(message_page(conversation=conversation, limit=4).results) == 4
    with pytest.raises(ValidationFailed):
        message_page(conversation=conversation, limit=5)


@pytest.mark.parametrize("cursor", ["x", "-1", "1e3", 2**63, "9" * 30])
def test_bad_cursors_are_clear_errors(conversation, cursor):
    with pytest.raises(ValidationFailed) as error:
        message_page(conversation=conversation, before=cursor)
    assert error.value.fields["before"][0]["code"] in {"invalid", "out_of_range"}


def test_before_and_after_together_is_an_error(conversation):
    with pytest.raises(ValidationFailed):
        message_page(conversation=conversation, before=5, after=1)


def test_owner_scoping(user, other_user, conversation):
    with pytest.raises(NotFound):
        selectors.get_conversation(user=other_user, conversation_id=conversation.pk)
    with pytest.raises(NotFound):
        selectors.get_conversation(user=user, conversation_id=conversation.pk + 1000)
    for junk in ("abc", -1, 0, None, 2**70):
        with pytest.raises(NotFound):
            selectors.get_conversation(user=user, conversation_id=junk)
    assert (
        selectors.get_conversation(user=user, conversation_id=str(conversation.pk)) == conversation
    )
    assert list(selectors.conversations_of(other_user)) == []


def test_page_query_count_is_constant(conversation, plain_agent, user):
    fill(conversation, 10)
    big = services.create_conversation(user=user, agent=plain_agent)
    fill(big, 3000)
    counts = []
    for target in (conversation, big):
        with CaptureQueriesContext(connection) as queries:
            message_page(conversation=target, limit=5)
            message_page(conversation=target, before=10**6, limit=5)
        counts.append(len(queries))
        assert not any(
            "OFFSET" in q["sql"] or "COUNT(" in q["sql"] for q in queries.captured_queries
        )
    assert counts[0] == counts[1]


def test_user_message_page_checks_the_owner_in_the_page_query(user, other_user, conversation):
    ids = fill(conversation, 12)
    with CaptureQueriesContext(connection) as queries:
        page = user_message_page(user=user, conversation_id=conversation.pk, before=ids[8], limit=5)
    assert len(queries) == 1
    assert page_ids(page) == ids[3:8]
    assert page.has_older and page.has_newer
    for intruder in (other_user, AnonymousUser()):
        for params in ({}, {"before": ids[8]}, {"after": ids[2]}, {"after": ids[-1]}):
            with pytest.raises(NotFound):
                user_message_page(user=intruder, conversation_id=conversation.pk, **params)
    with pytest.raises(NotFound):
        user_message_page(user=user, conversation_id=10**12)
    # Someone else's conversation is NotFound whatever the arguments; one's own, a 400.
    with pytest.raises(NotFound):
        user_message_page(user=other_user, conversation_id=conversation.pk, limit="x")
    with pytest.raises(ValidationFailed):
        user_message_page(user=user, conversation_id=conversation.pk, limit="x")
    # An empty page of one's own conversation is a page, not NotFound.
    empty = user_message_page(user=user, conversation_id=conversation.pk, after=ids[-1])
    assert empty.results == [] and empty.has_older and not empty.has_newer


def test_page_rows_equal_orm_instances(conversation, user):
    """The page reader builds the same instances as the ORM, JSON columns included."""
    human = services.append_message(conversation=conversation, message=HumanMessage("hé ✓"))
    reply = services.append_message(
        conversation=conversation,
        message=AIMessage(
            "done",
            usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        ),
        model="m-1",
    )
    ConversationMessage.objects.filter(pk=reply.pk).update(
        error={"code": "x", "nested": [1, None, {"a": "b"}]}, usage=None
    )
    page = message_page(conversation=conversation)
    expected = list(ConversationMessage.objects.filter(conversation=conversation).order_by("id"))
    assert [m.pk for m in page.results] == [human.pk, reply.pk]
    for got, want in zip(page.results, expected, strict=True):
        for field in ConversationMessage._meta.concrete_fields:
            assert getattr(got, field.attname) == getattr(want, field.attname), field.name
        assert got._state.adding is False
        assert got._state.db == "default"
    assert page.results[1].error == {"code": "x", "nested": [1, None, {"a": "b"}]}
    assert page.results[1].usage is None


def test_conversation_list_keyset_newest_activity_first(user, other_user, plain_agent):
    made = [
        services.create_conversation(user=user, agent=plain_agent, title=f"c{i}") for i in range(7)
    ]
    services.create_conversation(user=other_user, agent=plain_agent, title="not mine")
    services.append_message(conversation=made[2], message=HumanMessage("bump"))
    seen = []
    cursor = None
    while True:
        page = conversation_page(user=user, cursor=cursor, limit=3)
        seen += [c.title for c in page.results]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen[0] == "c2"
    assert sorted(seen) == sorted(c.title for c in made)
    assert len(seen) == 7
    with_last = conversation_page(user=user, limit=1).results[0]
    assert with_last.last_message.text == "bump"


def test_conversation_filters(user, plain_agent, tutor):
    a = services.create_conversation(user=user, agent=plain_agent, title="Coffee order")
    services.create_conversation(user=user, agent=tutor, title="Tea time")
    services.set_archived(conversation=a, archived=True)
    titles = lambda **kw: [c.title for c in conversation_page(user=user, **kw).results]  # noqa: E731
    assert titles(archived=True) == ["Coffee order"]
    assert titles(archived=False) == ["Tea time"]
    assert titles(agent="language-tutor") == ["Tea time"]
    assert titles(q="coffee") == ["Coffee order"]
    with pytest.raises(ValidationFailed):
        conversation_page(user=user, cursor="!!not-a-cursor!!")


def test_conversation_list_query_count_is_constant(user, plain_agent):
    def count(n):
        for i in range(n):
            c = services.create_conversation(user=user, agent=plain_agent, title=str(i))
            services.append_message(conversation=c, message=HumanMessage("x"))
        with CaptureQueriesContext(connection) as queries:
            page = conversation_page(user=user, limit=50)
            [(c.agent.slug, c.last_message) for c in page.results]
        return len(queries)

    assert count(2) == count(20)


def test_page_instances_keep_integers_beyond_64_bits_exact(conversation):
    # The page's rows are built by core.rows.RowLoader (orjson), which would read
    # such an integer as a float.
    message = services.append_message(
        conversation=conversation,
        message=AIMessage(content="n", response_metadata={"id": 2**70 + 1, "small": 7}),
    )
    (row,) = message_page(conversation=conversation).results
    stored = ConversationMessage.objects.get(pk=message.pk)
    assert row.content == stored.content
    assert row.content["_value"]["response_metadata"]["id"] == 2**70 + 1
