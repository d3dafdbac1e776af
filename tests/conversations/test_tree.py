"""Conversations as trees (conversations/tree.py): regenerate and edit keep every version,
a branch switch restores one, every read follows the active branch, forks copy it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from langchain_core.messages import AIMessage, HumanMessage

from conversations import selectors, services
from conversations.inputs import HistoryRequest
from conversations.models import Conversation, ConversationMessage
from conversations.payloads import message_payload
from core.errors import NotFound, TurnInProgress, ValidationFailed

pytestmark = pytest.mark.django_db


def finish(conversation: Conversation, start, text: str, status: str = "complete") -> None:
    services.finish_message(
        conversation_id=conversation.pk,
        turn_id=start.turn_id,
        message_id=start.ai_message.pk,
        message=AIMessage(text),
        status=status,
        error={"code": "provider_error", "message": "down"} if status == "failed" else None,
        release_lock=True,
    )


def turn(conversation: Conversation, question: str, answer: str, **kwargs):
    content = None if kwargs.get("regenerate") else HumanMessage(question)
    start = services.begin_turn(conversation=conversation, content=content, **kwargs)
    finish(conversation, start, answer)
    return start


def path_texts(conversation: Conversation) -> list[str]:
    """The active branch as a history page shows it (oldest first)."""
    page = selectors.message_page(conversation=conversation, request=HistoryRequest(size=200))
    return [m.text for m in page.results]


def assert_flags_match_the_leaf(conversation: Conversation) -> None:
    """The `on_path` rows are exactly the ancestors of the active leaf (and it)."""
    conversation.refresh_from_db()
    parents = dict(
        ConversationMessage.objects.filter(conversation=conversation).values_list("id", "parent_id")
    )
    expected, node = set(), conversation.active_leaf_id
    while node is not None:
        expected.add(node)
        node = parents[node]
    flagged = set(
        ConversationMessage.objects.filter(conversation=conversation, on_path=True).values_list(
            "id", flat=True
        )
    )
    assert flagged == expected


def test_messages_chain_and_the_last_is_the_active_leaf(conversation):
    first = turn(conversation, "q1", "a1")
    second = turn(conversation, "q2", "a2")
    conversation.refresh_from_db()
    rows = list(ConversationMessage.objects.filter(conversation=conversation).order_by("id"))
    assert [r.parent_id for r in rows] == [None, rows[0].pk, rows[1].pk, rows[2].pk]
    assert conversation.active_leaf_id == second.ai_message.pk
    assert message_payload(first.human_message)["siblings"] == {
        "ids": [first.human_message.pk],
        "index": 0,
    }
    assert_flags_match_the_leaf(conversation)


def test_regenerate_keeps_the_old_reply_and_makes_the_new_one_active(conversation):
    first = turn(conversation, "q", "old")
    again = turn(conversation, "", "new", regenerate=True)
    third = turn(conversation, "", "newest", regenerate=True)
    assert path_texts(conversation) == ["q", "newest"]
    ids = [first.ai_message.pk, again.ai_message.pk, third.ai_message.pk]
    old = ConversationMessage.objects.get(pk=first.ai_message.pk)
    assert old.text == "old" and not old.on_path
    for index, pk in enumerate(ids):
        payload = message_payload(ConversationMessage.objects.get(pk=pk))
        assert payload["parent_id"] == first.human_message.pk
        assert payload["siblings"] == {"ids": ids, "index": index}
    conversation.refresh_from_db()
    assert conversation.message_count == 4  # nothing deleted
    assert_flags_match_the_leaf(conversation)


def test_edit_adds_a_human_sibling_and_answers_it(conversation):
    turn(conversation, "q1", "a1")
    asked = turn(conversation, "q2", "a2")
    turn(conversation, "q3", "a3")
    edited = turn(conversation, "q2 edited", "a2'", edit_of=asked.human_message.pk)
    assert path_texts(conversation) == ["q1", "a1", "q2 edited", "a2'"]
    payload = message_payload(edited.human_message)
    assert payload["parent_id"] == asked.human_message.parent_id
    assert payload["siblings"] == {
        "ids": [asked.human_message.pk, edited.human_message.pk],
        "index": 1,
    }
    # The old version and everything after it are kept, off the active branch.
    assert ConversationMessage.objects.filter(conversation=conversation).count() == 8
    assert_flags_match_the_leaf(conversation)


def test_editing_the_first_message_starts_a_new_root(conversation):
    first = turn(conversation, "hello", "hi")
    edited = turn(conversation, "bonjour", "salut", edit_of=first.human_message.pk)
    assert path_texts(conversation) == ["bonjour", "salut"]
    assert edited.human_message.parent_id is None
    assert edited.human_message.sibling_ids == [first.human_message.pk, edited.human_message.pk]
    assert_flags_match_the_leaf(conversation)


def test_switching_back_restores_the_newest_leaf_of_that_branch(conversation):
    turn(conversation, "q1", "a1")
    asked = turn(conversation, "q2", "a2")
    turn(conversation, "q3", "a3")
    turn(conversation, "q2 edited", "a2'", edit_of=asked.human_message.pk)
    services.switch_branch(conversation=conversation, message_id=asked.human_message.pk)
    assert path_texts(conversation) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert_flags_match_the_leaf(conversation)
    # The model's window follows the branch too.
    window = selectors.history_window(conversation_id=conversation.pk, up_to_id=10**12, size=50)
    assert [m.text for m in reversed(list(window))] == ["q1", "a1", "q2", "a2", "q3", "a3"]
    # A new turn continues the restored branch.
    turn(conversation, "q4", "a4")
    assert path_texts(conversation)[-4:] == ["q3", "a3", "q4", "a4"]
    assert_flags_match_the_leaf(conversation)


def test_switching_to_the_active_branch_changes_nothing(
    conversation, django_capture_on_commit_callbacks
):
    turn(conversation, "q", "a")
    conversation.refresh_from_db()
    leaf = conversation.active_leaf_id
    with django_capture_on_commit_callbacks() as callbacks:
        services.switch_branch(conversation=conversation, message_id=leaf)
    assert callbacks == []  # no event: nothing changed
    conversation.refresh_from_db()
    assert conversation.active_leaf_id == leaf


def test_branch_writes_refuse_while_a_turn_runs(conversation):
    done = turn(conversation, "q", "a")
    running = services.begin_turn(conversation=conversation, content=HumanMessage("next"))
    for write in (
        lambda: services.switch_branch(conversation=conversation, message_id=done.ai_message.pk),
        lambda: services.begin_turn(
            conversation=conversation,
            content=HumanMessage("x"),
            edit_of=done.human_message.pk,
            enqueue=True,  # an edit is never queued
        ),
        lambda: services.fork_conversation(
            conversation=conversation, message_id=done.ai_message.pk
        ),
    ):
        with pytest.raises(TurnInProgress):
            write()
    finish(conversation, running, "b")
    services.switch_branch(conversation=conversation, message_id=done.ai_message.pk)


def test_bad_targets(conversation, user, plain_agent):
    done = turn(conversation, "q", "a")
    elsewhere = services.create_conversation(user=user, agent=plain_agent)
    other = turn(elsewhere, "x", "y")
    with pytest.raises(NotFound):
        services.switch_branch(conversation=conversation, message_id=other.ai_message.pk)
    with pytest.raises(NotFound):
        services.switch_branch(conversation=conversation, message_id="nope")
    with pytest.raises(NotFound):
        services.begin_turn(
            conversation=conversation, content=HumanMessage("x"), edit_of=other.human_message.pk
        )
    with pytest.raises(ValidationFailed) as error:
        services.begin_turn(
            conversation=conversation, content=HumanMessage("x"), edit_of=done.ai_message.pk
        )
    assert "message_id" in error.value.fields
    assert ConversationMessage.objects.filter(conversation=conversation).count() == 2


def test_a_failed_turn_leaves_its_branch_with_the_failed_reply(conversation):
    start = services.begin_turn(conversation=conversation, content=HumanMessage("q"))
    finish(conversation, start, "partial", status="failed")
    conversation.refresh_from_db()
    assert conversation.active_leaf_id == start.ai_message.pk
    assert path_texts(conversation) == ["q", "partial"]
    again = turn(conversation, "", "ok", regenerate=True)
    services.switch_branch(conversation=conversation, message_id=start.ai_message.pk)
    assert path_texts(conversation) == ["q", "partial"]
    failed = ConversationMessage.objects.get(pk=start.ai_message.pk)
    assert failed.status == "failed"
    assert message_payload(failed)["siblings"]["ids"] == [start.ai_message.pk, again.ai_message.pk]


def branched(conversation: Conversation, turns: int) -> None:
    """`turns` turns, every other one regenerated once (its old reply kept)."""
    for index in range(turns):
        turn(conversation, f"q{index}", f"a{index}")
        if index % 2:
            turn(conversation, "", f"a{index} again", regenerate=True)


def test_a_page_is_one_statement_with_siblings_whatever_its_size(conversation, user, plain_agent):
    big = services.create_conversation(user=user, agent=plain_agent)
    branched(conversation, 4)
    branched(big, 60)
    counts = []
    for target, size in ((conversation, 3), (big, 100)):
        with CaptureQueriesContext(connection) as queries:
            page = selectors.user_message_page(
                user=user, conversation_id=target.pk, request=HistoryRequest(size=size)
            )
            payloads = [message_payload(m, page.feedback.get(m.id)) for m in page.results]
        counts.append(len(queries))
        assert any(len(p["siblings"]["ids"]) == 2 for p in payloads)
        assert all(p["id"] in p["siblings"]["ids"] for p in payloads)
    # The page itself, and its AI messages' ratings: no query per message.
    assert counts == [2, 2]


def test_the_model_window_is_one_statement_at_any_length(conversation, user, plain_agent):
    big = services.create_conversation(user=user, agent=plain_agent)
    branched(conversation, 3)
    branched(big, 80)
    for target in (conversation, big):
        with CaptureQueriesContext(connection) as queries:
            rows = list(
                selectors.history_window(conversation_id=target.pk, up_to_id=10**12, size=20)
            )
        assert len(queries) == 1
        assert all(row.on_path for row in rows)


def test_fork_copies_the_active_branch_up_to_a_message(conversation, user, plain_agent):
    turn(conversation, "q1", "a1")
    asked = turn(conversation, "q2", "a2")
    turn(conversation, "", "a2 again", regenerate=True)
    turn(conversation, "q3", "a3")
    cut = ConversationMessage.objects.get(conversation=conversation, text="a2 again")
    fork = services.fork_conversation(conversation=conversation, message_id=cut.pk)
    assert fork.pk != conversation.pk and fork.user_id == user.pk
    assert fork.agent_id == conversation.agent_id and fork.message_count == 4
    assert path_texts(fork) == ["q1", "a1", "q2", "a2 again"]
    copies = list(ConversationMessage.objects.filter(conversation=fork).order_by("id"))
    assert [c.parent_id for c in copies] == [None, *[c.pk for c in copies[:-1]]]
    assert fork.active_leaf_id == copies[-1].pk
    assert all(c.sibling_ids is None for c in copies)
    assert_flags_match_the_leaf(fork)
    # The original is untouched.
    assert path_texts(conversation) == ["q1", "a1", "q2", "a2 again", "q3", "a3"]
    # Off the active branch: refused.
    old = ConversationMessage.objects.get(conversation=conversation, text="a2")
    with pytest.raises(ValidationFailed):
        services.fork_conversation(conversation=conversation, message_id=old.pk)
    assert asked.human_message.pk not in {c.pk for c in copies}


def test_fork_is_a_fixed_number_of_statements(conversation, user, plain_agent):
    big = services.create_conversation(user=user, agent=plain_agent)
    branched(conversation, 2)
    branched(big, 50)
    counts = []
    for target in (conversation, big):
        target.refresh_from_db()
        with CaptureQueriesContext(connection) as queries:
            services.fork_conversation(conversation=target, message_id=target.active_leaf_id)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_clear_empties_the_tree(conversation):
    turn(conversation, "q", "a")
    turn(conversation, "", "b", regenerate=True)
    services.clear_conversation(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.active_leaf_id is None
    turn(conversation, "again", "fresh")
    assert path_texts(conversation) == ["again", "fresh"]
    assert ConversationMessage.objects.get(text="again").parent_id is None


def switch_at_once(conversation: Conversation, targets: list[int]) -> list[BaseException]:
    """Each target switched to from its own thread (its own connection), all at once."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def switch(message_id: int) -> None:
        try:
            barrier.wait()
            services.switch_branch(conversation=conversation, message_id=message_id)
        except BaseException as error:  # reported by the caller
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=switch, args=(pk,)) for pk in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
def test_two_devices_switching_at_once_end_on_one_consistent_leaf(conversation):
    turn(conversation, "q", "a")
    versions = [turn(conversation, "", f"v{i}", regenerate=True) for i in range(3)]
    targets = [versions[0].ai_message.pk, versions[2].ai_message.pk]
    for _ in range(3):
        assert switch_at_once(conversation, targets) == []
        conversation.refresh_from_db()
        assert conversation.active_leaf_id in targets
        assert_flags_match_the_leaf(conversation)
        assert len(path_texts(conversation)) == 2
