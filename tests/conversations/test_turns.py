"""The turn engine's rules (conversations/turns/engine.py), one test each.

Every turn here runs through the real ChatOpenAI client against the local
OpenAI-compatible server (`llm`), on the configured database and channel layer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.codec import decode_message, encode_message
from conversations.events import conversation_group
from conversations.models import Conversation, ConversationMessage, MessageRole, MessageStatus
from conversations.payloads import message_payload
from conversations.turns import TurnHooks, cancel_turn, start_turn, wait_for_result
from core.errors import IdempotencyKeyReused, TurnInProgress, ValidationFailed
from tests.support.requirements import database_pool
from tests.support.turns import (
    GroupListener,
    QueryLog,
    eventually,
    in_other_connection,
    turn_cleanup,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db(transaction=True)


def rows(conversation_id: int) -> list[ConversationMessage]:
    return list(ConversationMessage.objects.filter(conversation_id=conversation_id).order_by("id"))


async def arows(conversation_id: int) -> list[ConversationMessage]:
    return await sync_to_async(rows)(conversation_id)


async def aconversation(conversation_id: int) -> Conversation:
    return await Conversation.objects.aget(pk=conversation_id)


class RecordingHooks(TurnHooks):
    def __init__(self) -> None:
        self.completed: list[tuple] = []

    async def on_conversation_complete(self, human_message, ai_message, tools_output_list):
        self.completed.append((human_message, ai_message, tools_output_list))


# --- the human message first, the AI message streaming from the start --------


async def test_human_message_is_committed_before_the_provider_is_called(llm, conversation):
    llm.reply_text(["Late ", "answer."], initial_delay=1.0)
    handle = await start_turn(conversation=conversation, content="Are you there?")
    # The provider call is pending (the server holds its reply).
    await eventually(lambda: len(llm.requests) == 1, what="the provider call")
    assert handle.task is not None and not handle.task.done()

    def read_from_another_session():
        session = None  # SQLite: a connection per thread, and this runs in another thread
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                session = cursor.fetchone()[0]
        return (
            session,
            [(row.role, row.text, row.status) for row in rows(conversation.pk)],
            Conversation.objects.get(pk=conversation.pk).active_turn_id,
        )

    session, seen, active_turn = await in_other_connection(read_from_another_session)
    own_session = await sync_to_async(read_from_another_session)()
    if connection.vendor == "postgresql":
        assert session != own_session[0], "the read must come from another database session"
    assert seen == [
        ("human", "Are you there?", MessageStatus.COMPLETE),
        ("ai", "", MessageStatus.STREAMING),
    ]
    assert active_turn == handle.turn_id

    result = await wait_for_result(handle, timeout=10)
    assert result.ai_message.text == "Late answer."


async def test_ai_message_exists_as_streaming_from_the_start(llm, conversation):
    llm.reply_text(["Hi"], initial_delay=0.3)
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        handle = await start_turn(conversation=conversation, content="hello")
        assert handle.ai_message.pk is not None
        assert handle.ai_message.status == MessageStatus.STREAMING
        assert handle.ai_message.turn_id == handle.human_message.turn_id == handle.turn_id
        created = [
            await listener.until_type("message.created"),
            await listener.until_type("message.created"),
        ]
        assert [e["message"]["role"] for e in created] == ["human", "ai"]
        assert created[1]["message"]["id"] == handle.ai_message.pk
        assert created[1]["message"]["status"] == "streaming"
        await wait_for_result(handle, timeout=10)


# --- streaming: deltas live, partial text saved, bounded writes ----------------


async def test_deltas_are_published_as_they_arrive(llm, conversation):
    deltas = ["One", " two", " three", " four", " five"]
    llm.reply_text(deltas, chunk_delay=0.15)
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        started = time.monotonic()
        handle = await start_turn(conversation=conversation, content="count")
        first = await listener.until_type("message.delta")
        first_at = time.monotonic() - started
        done = await listener.until_type("message.completed")
        done_at = time.monotonic() - started
    # The first delta came long before the stream ended (5 x 0.15 s).
    assert done_at - first_at > 0.4
    assert first["message_id"] == handle.ai_message.pk
    received = listener.of_type("message.delta")
    assert len(received) >= 3  # batched over 30 ms, but not held back until the end
    assert [e["index"] for e in received] == list(range(len(received)))
    offset = 0
    for event in received:
        assert event["offset"] == offset
        offset += len(event["delta"])
    assert "".join(e["delta"] for e in received) == "".join(deltas)
    assert done["message"]["text"] == "".join(deltas)


async def test_partial_text_is_saved_while_streaming(llm, conversation):
    deltas = [f"w{i} " for i in range(12)]
    llm.reply_text(deltas, chunk_delay=0.1)
    handle = await start_turn(conversation=conversation, content="talk slowly")

    def read_ai():
        row = ConversationMessage.objects.get(pk=handle.ai_message.pk)
        return row.status, row.text

    partial = await eventually(
        lambda: _partial_seen(read_ai), timeout=5, what="a saved partial text"
    )
    status, text = partial
    assert status == MessageStatus.STREAMING
    full = "".join(deltas)
    assert text and full.startswith(text) and len(text) < len(full)
    result = await wait_for_result(handle, timeout=10)
    assert result.ai_message.text == full


async def _partial_seen(read_ai):
    status, text = await in_other_connection(read_ai)
    return (status, text) if status == MessageStatus.STREAMING and text else None


async def test_partial_saves_are_bounded(llm, conversation, settings):
    chunks = 40
    llm.reply_text(["x"] * chunks, chunk_delay=0.025)  # about 1 s of streaming
    async with QueryLog() as log:
        handle = await start_turn(conversation=conversation, content="stream a lot")
        await wait_for_result(handle, timeout=10)
    partial_saves = log.matching('UPDATE "conversations_conversationmessage"', '"text"')
    # One final save plus one partial save per CONFAB_PARTIAL_SAVE_SECONDS (0.2 s) at most.
    assert log.matching('INSERT INTO "conversations_conversationmessage"'), "log missed the turn"
    assert 2 <= len(partial_saves) <= 1 + 1.0 / settings.CONFAB_PARTIAL_SAVE_SECONDS + 3
    assert len(partial_saves) < chunks / 4


# --- completion ----------------------------------------------------------------


async def test_completion_stores_everything_and_calls_the_hook(llm, conversation):
    llm.reply_text(["Hel", "lo ", "🌍"], usage=(17, 3))
    hooks = RecordingHooks()
    before = await aconversation(conversation.pk)
    handle = await start_turn(conversation=conversation, content="hi", hooks=hooks)
    result = await wait_for_result(handle, timeout=10)

    ai = result.ai_message
    assert ai.status == MessageStatus.COMPLETE
    assert ai.text == "Hello 🌍"
    assert ai.usage == {"input_tokens": 17, "output_tokens": 3, "total_tokens": 20}
    assert ai.model == "test-model"
    assert ai.error is None
    message = decode_message(ai.content)
    assert isinstance(message, AIMessage)
    assert message.content == "Hello 🌍"
    assert message.usage_metadata["input_tokens"] == 17
    assert message.response_metadata["finish_reason"] == "stop"
    assert encode_message(message) == ai.content  # lossless round trip
    assert decode_message(result.human_message.content) == HumanMessage(
        content="hi", id=message_id(result.human_message)
    )

    after = await aconversation(conversation.pk)
    assert after.message_count == before.message_count + 2
    assert after.last_message_at is not None
    assert before.last_message_at is None or after.last_message_at > before.last_message_at
    assert after.active_turn_id is None

    assert len(hooks.completed) == 1
    human, final, tools_output = hooks.completed[0]
    assert human.pk == result.human_message.pk
    assert final.pk == ai.pk and final.status == MessageStatus.COMPLETE
    assert tools_output == []


def message_id(row: ConversationMessage):
    return row.content["_value"].get("id")


# --- failures ------------------------------------------------------------------

SECRET_MARKERS = ("test-key", "http://", "127.0.0.1", "Error code", "fake", "You are a test")


@pytest.mark.parametrize(
    ("script", "code", "partial"),
    [
        (lambda llm: llm.reply_error(429), "provider_rate_limited", ""),
        (lambda llm: llm.reply_error(500), "provider_error", ""),
        (lambda llm: llm.reply_error(400), "provider_rejected", ""),
        (lambda llm: llm.hang(3), "provider_timeout", ""),
        (
            lambda llm: llm.reply_text(["Half ", "a ", "reply ", "lost"], die_after=2),
            "provider_stream_interrupted",
            "Half a ",
        ),
    ],
    ids=["429", "500", "400", "timeout", "stream-dies"],
)
async def test_provider_failures_end_the_reply_failed(
    llm, conversation, settings, script, code, partial
):
    settings.CONFAB_LLM_TIMEOUT = 0.5
    script(llm)
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        handle = await start_turn(conversation=conversation, content="Tell me something")
        result = await wait_for_result(handle, timeout=10)
        failed = await listener.until_type("message.failed")

    ai = result.ai_message
    assert ai.status == MessageStatus.FAILED
    assert ai.error["code"] == code
    assert ai.text == partial
    assert decode_message(ai.content).content == partial
    # The human message is never lost.
    assert result.human_message.text == "Tell me something"
    assert result.human_message.status == MessageStatus.COMPLETE
    assert [r.role for r in await arows(conversation.pk)] == ["human", "ai"]
    assert (await aconversation(conversation.pk)).active_turn_id is None
    # The event carries the same stable error, and nothing internal.
    assert failed["error"] == ai.error
    exposed = json.dumps([ai.error, failed, message_payload(ai)])
    for marker in SECRET_MARKERS:
        assert marker not in exposed, marker


async def test_a_stream_that_goes_quiet_ends_with_an_idle_timeout(llm, conversation, settings):
    settings.CONFAB_LLM_IDLE_TIMEOUT = 0.4
    llm.reply_text(["never", " sent"], chunk_delay=3.0)
    started = time.monotonic()
    handle = await start_turn(conversation=conversation, content="hello?")
    result = await wait_for_result(handle, timeout=10)
    assert time.monotonic() - started < 2.5
    assert result.ai_message.status == MessageStatus.FAILED
    assert result.ai_message.error["code"] == "provider_timeout"
    assert result.human_message.text == "hello?"


async def test_an_unreachable_provider_is_a_stable_error(conversation, settings):
    settings.CONFAB_LLM_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    handle = await start_turn(conversation=conversation, content="anyone?")
    result = await wait_for_result(handle, timeout=10)
    assert result.ai_message.status == MessageStatus.FAILED
    assert result.ai_message.error["code"] == "provider_unavailable"
    assert "127.0.0.1" not in json.dumps(result.ai_message.error)


# --- cancel ----------------------------------------------------------------------


async def test_cancel_ends_the_turn_cancelled_with_its_partial_text(llm, conversation):
    deltas = [f"part{i} " for i in range(30)]
    llm.reply_text(deltas, chunk_delay=0.05)
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        handle = await start_turn(conversation=conversation, content="go on")
        await listener.until_type("message.delta")
        turn_id = await cancel_turn(conversation=conversation)
        assert turn_id == handle.turn_id
        result = await wait_for_result(handle, timeout=5)
        completed = await listener.until_type("message.completed")

    ai = result.ai_message
    assert ai.status == MessageStatus.CANCELLED
    assert ai.text and "".join(deltas).startswith(ai.text) and ai.text != "".join(deltas)
    assert decode_message(ai.content).content == ai.text
    assert completed["message"]["status"] == "cancelled"
    assert (await aconversation(conversation.pk)).active_turn_id is None
    # The provider stream was abandoned, not read to the end.
    assert len(llm.requests[0].chunks) < len(deltas)


async def test_cancel_from_another_process_is_seen_by_the_heartbeat(llm, conversation, settings):
    deltas = [f"p{i} " for i in range(40)]
    llm.reply_text(deltas, chunk_delay=0.05)
    handle = await start_turn(conversation=conversation, content="go on")
    await eventually(lambda: len(llm.requests[0].chunks) > 3 if llm.requests else False)
    # Only the database flag, as another worker's cancel request would set it.
    asked_at = time.monotonic()
    await in_other_connection(services.request_cancel, conversation=conversation)
    result = await wait_for_result(handle, timeout=5)
    noticed_after = time.monotonic() - asked_at
    assert result.ai_message.status == MessageStatus.CANCELLED
    assert result.ai_message.text
    assert noticed_after < settings.CONFAB_PARTIAL_SAVE_SECONDS * 3 + 0.5
    conv = await aconversation(conversation.pk)
    assert conv.active_turn_id is None and conv.cancel_requested is False


async def test_cancelling_the_task_records_the_reply_as_interrupted(llm, conversation):
    # What a worker shutting down does to its running turns.
    llm.reply_text([f"t{i} " for i in range(20)], chunk_delay=0.05)
    handle = await start_turn(conversation=conversation, content="long one")
    await eventually(lambda: len(llm.requests[0].chunks) > 3 if llm.requests else False)
    handle.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handle.task
    ai = await ConversationMessage.objects.aget(pk=handle.ai_message.pk)
    assert ai.status == MessageStatus.FAILED
    assert ai.error["code"] == "interrupted"
    assert (await aconversation(conversation.pk)).active_turn_id is None


# --- one active turn per conversation ----------------------------------------------


async def test_a_second_turn_while_one_runs_is_refused(llm, conversation):
    llm.reply_text(["slow"], initial_delay=0.5)
    handle = await start_turn(conversation=conversation, content="first")
    with pytest.raises(TurnInProgress):
        await start_turn(conversation=conversation, content="second")
    await wait_for_result(handle, timeout=10)
    assert [r.text for r in await arows(conversation.pk)] == ["first", "slow"]
    # Once it ended, the next turn may start.
    llm.reply_text(["ok"])
    await wait_for_result(await start_turn(conversation=conversation, content="third"), timeout=10)


async def test_concurrent_starts_have_exactly_one_winner(conversation):
    attempts = 12
    barrier = asyncio.Barrier(attempts)

    async def attempt(i):
        await barrier.wait()
        try:
            # Each attempt in its own thread, on its own database session.
            return await in_other_connection(
                services.begin_turn,
                conversation=conversation,
                content=HumanMessage(content=f"attempt {i}"),
            )
        except TurnInProgress:
            return None

    outcomes = await asyncio.gather(*(attempt(i) for i in range(attempts)))
    winners = [o for o in outcomes if o is not None]
    assert len(winners) == 1
    stored = await arows(conversation.pk)
    assert [r.role for r in stored] == ["human", "ai"]
    conv = await aconversation(conversation.pk)
    assert conv.active_turn_id == winners[0].turn_id
    assert conv.message_count == 2


async def test_concurrent_engine_starts_have_exactly_one_winner(llm, conversation):
    results = await asyncio.gather(
        *(start_turn(conversation=conversation, content=f"m{i}") for i in range(8)),
        return_exceptions=True,
    )
    handles = [r for r in results if not isinstance(r, BaseException)]
    assert len(handles) == 1
    assert all(isinstance(r, TurnInProgress) for r in results if r not in handles)
    await wait_for_result(handles[0], timeout=10)
    assert len(llm.requests) == 1


# --- idempotent client_message_id ---------------------------------------------------


async def test_repeated_client_message_id_returns_the_existing_turn(llm, conversation):
    llm.reply_text(["Only ", "once"], chunk_delay=0.1)
    first = await start_turn(conversation=conversation, content="hi", client_message_id="c-1")
    # Repeated while running: the same turn and task, no second provider call.
    again = await start_turn(conversation=conversation, content="hi", client_message_id="c-1")
    assert again.existing and again.turn_id == first.turn_id
    assert again.human_message.pk == first.human_message.pk
    assert again.ai_message.pk == first.ai_message.pk
    assert again.task is first.task
    result = await wait_for_result(first, timeout=10)
    # Repeated after it ended: the stored result.
    later = await start_turn(conversation=conversation, content="hi", client_message_id="c-1")
    assert later.existing and later.ai_message.pk == result.ai_message.pk
    assert (await wait_for_result(later, timeout=5)).ai_message.text == "Only once"
    assert len(llm.requests) == 1
    assert len(await arows(conversation.pk)) == 2


async def test_a_client_message_id_reused_for_other_content_is_a_conflict(llm, conversation):
    llm.reply_text(["ok"])
    first = await start_turn(conversation=conversation, content="hi", client_message_id="c-2")
    await wait_for_result(first, timeout=10)
    with pytest.raises(IdempotencyKeyReused):
        await start_turn(conversation=conversation, content="other", client_message_id="c-2")
    assert len(llm.requests) == 1
    assert len(await arows(conversation.pk)) == 2


async def test_invalid_content_is_refused_before_anything_is_stored(llm, conversation, settings):
    settings.CONFAB_MAX_CONTENT_CHARS = 10
    for content in ["", "   ", None, 42, "x" * 11]:
        with pytest.raises(ValidationFailed):
            await start_turn(conversation=conversation, content=content)
    with pytest.raises(ValidationFailed):
        await start_turn(conversation=conversation, content="ok", client_message_id="x" * 101)
    assert await arows(conversation.pk) == []
    assert llm.requests == []


# --- a bounded history window ---------------------------------------------------------


def fill_history(conversation: Conversation, count: int) -> None:
    """`count` finished messages, alternating human/ai, inserted in bulk."""
    batch = []
    for i in range(count):
        message = HumanMessage(content=f"q{i}") if i % 2 == 0 else AIMessage(content=f"a{i}")
        batch.append(
            ConversationMessage(
                conversation=conversation,
                user_id=conversation.user_id,
                role=MessageRole.HUMAN if i % 2 == 0 else MessageRole.AI,
                content=encode_message(message),
                text=message.content,
            )
        )
    ConversationMessage.objects.bulk_create(batch, batch_size=2000)
    Conversation.objects.filter(pk=conversation.pk).update(message_count=count)


async def test_history_window_is_bounded_and_turn_sql_does_not_grow(
    llm, user, plain_agent, settings
):
    settings.CONFAB_HISTORY_WINDOW = 5
    # No partial save or heartbeat during these short turns: only the turn's own queries
    # count (the process's heartbeat of its turns is a batch of its own, see ticks).
    settings.CONFAB_PARTIAL_SAVE_SECONDS = 30
    settings.CONFAB_TURN_HEARTBEAT_SECONDS = 30
    counts = {}
    for size in (10, 10_000):
        conv = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
        await sync_to_async(fill_history)(conv, size)
        conv = await Conversation.objects.select_related("agent").aget(pk=conv.pk)
        llm.reply_text(["fine"])
        async with QueryLog() as log:
            handle = await start_turn(conversation=conv, content=f"new after {size}")
            result = await wait_for_result(handle, timeout=20)
        assert result.ai_message.status == MessageStatus.COMPLETE
        assert log.matching('INSERT INTO "conversations_conversationmessage"'), "missed the turn"
        counts[size] = len(log.statements)
        sent = llm.requests[-1].messages
        # The system prompt, then the window: the last 5 messages ending with the new one.
        assert sent[0]["role"] == "system"
        assert len(sent) == 1 + settings.CONFAB_HISTORY_WINDOW
        assert sent[-1] == {"role": "user", "content": f"new after {size}"}
        assert sent[1]["content"] == f"q{size - 4}"
    assert counts[10] == counts[10_000], counts


async def test_turns_give_their_connections_back_to_the_pool(llm, user, plain_agent):
    # The engine's database work runs in its thread pool (turns/threads.py); each
    # service call returns its connection, so finished turns hold none.
    pool = database_pool()

    def checked_out() -> int:
        stats = pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]

    conversations = [
        await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
        for _ in range(8)
    ]
    before = checked_out()
    for _ in conversations:
        llm.reply_text(["pooled ", "reply"], chunk_delay=0.05)
    handles = [await start_turn(conversation=c, content="hello") for c in conversations]
    for handle in handles:
        assert (await wait_for_result(handle, timeout=10)).ai_message.text == "pooled reply"
    await eventually(lambda: checked_out() <= before, what="connections back in the pool")


async def test_failed_replies_and_cut_tool_exchanges_stay_out_of_the_window(llm, conversation):
    llm.reply_error(500)
    await wait_for_result(await start_turn(conversation=conversation, content="one"), timeout=10)
    llm.reply_text(["two-reply"])
    await wait_for_result(await start_turn(conversation=conversation, content="two"), timeout=10)
    sent = llm.requests[-1].messages
    assert [(m["role"], m["content"]) for m in sent[1:]] == [("user", "one"), ("user", "two")]


# --- clear during a running turn --------------------------------------------------------


async def test_clear_during_a_turn_leaves_the_conversation_empty(llm, conversation):
    hooks = RecordingHooks()
    llm.reply_text([f"c{i} " for i in range(20)], chunk_delay=0.05)
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        handle = await start_turn(conversation=conversation, content="to be cleared", hooks=hooks)
        await listener.until_type("message.delta")
        await in_other_connection(services.clear_conversation, conversation=conversation)
        await asyncio.wait_for(asyncio.shield(handle.task), 10)
        await listener.drain(quiet=0.3)
    assert await arows(conversation.pk) == []
    conv = await aconversation(conversation.pk)
    assert conv.message_count == 0 and conv.active_turn_id is None
    assert hooks.completed == []
    types = [e["type"] for e in listener.events]
    cleared_at = types.index("conversation.cleared")
    after = listener.events[cleared_at:]
    # Deltas already on their way may still arrive (for the cleared reply's id);
    # nothing else about messages does: no row was created, completed or failed.
    assert all(
        e["type"] == "message.delta" and e["message_id"] == handle.ai_message.pk
        for e in after
        if e["type"].startswith("message.")
    ), types
    # The conversation is usable again at once.
    llm.reply_text(["fresh"])
    result = await wait_for_result(await start_turn(conversation=conversation, content="again"))
    assert [r.text for r in await arows(conversation.pk)] == ["again", "fresh"]
    assert result.ai_message.status == MessageStatus.COMPLETE


# --- the window handed to the provider ------------------------------------------------------


def test_window_to_messages_keeps_only_what_a_provider_accepts():
    from langchain_core.messages import ToolMessage

    from conversations.services.messages import build_message
    from conversations.turns.config import window_to_messages

    conversation = Conversation(pk=1, user_id=1)

    def row(message):
        return build_message(conversation=conversation, message=message)

    call = {"name": "calculator", "args": {"expression": "1+1"}, "id": "c1", "type": "tool_call"}
    cut = {"name": "calculator", "args": {"expression": "2"}, "id": "c2", "type": "tool_call"}
    bad = {"name": "calculator", "args": "{oops", "id": "c3", "error": "not json"}
    window = [
        row(ToolMessage(content="orphan result", tool_call_id="c0")),  # its call fell out
        row(AIMessage(content="an answer whose question fell out")),
        row(HumanMessage(content="q1")),
        row(AIMessage(content="", tool_calls=[call])),
        row(ToolMessage(content="2", tool_call_id="c1")),
        row(AIMessage(content="It is 2.")),
        row(HumanMessage(content="q2")),
        row(AIMessage(content="let me see", tool_calls=[cut])),  # its result is missing
        row(AIMessage(content="")),  # an empty reply
        row(HumanMessage(content="q3")),
        row(AIMessage(content="", invalid_tool_calls=[bad])),
        row(ToolMessage(content="bad arguments", tool_call_id="c3")),
        row(HumanMessage(content="q4")),
    ]
    messages = window_to_messages(window)
    assert [(m.type, m.text) for m in messages] == [
        ("human", "q1"),
        ("ai", ""),
        ("tool", "2"),
        ("ai", "It is 2."),
        ("human", "q2"),
        ("ai", "let me see"),
        ("human", "q3"),
        ("ai", ""),
        ("tool", "bad arguments"),
        ("human", "q4"),
    ]
    assert messages[1].tool_calls[0]["id"] == "c1"
    assert messages[5].tool_calls == []  # the unanswered call is dropped, its text kept
    assert messages[7].invalid_tool_calls[0]["id"] == "c3"


async def test_a_stored_row_that_does_not_decode_is_left_out_of_later_turns(
    llm, conversation, caplog
):
    await wait_for_result(await start_turn(conversation=conversation, content="q1"), timeout=10)
    damaged = await ConversationMessage.objects.filter(conversation=conversation).alast()
    damaged.content = {"_type": "AIMessage", "_value": {"content": 42}}  # not a message
    await damaged.asave(update_fields=["content"])
    llm.reply_text(["still here"])
    with caplog.at_level(logging.WARNING, logger="conversations.turns.config"):
        result = await wait_for_result(
            await start_turn(conversation=conversation, content="q2"), timeout=10
        )
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert [m["content"] for m in llm.requests[-1].messages[1:]] == ["q1", "q2"]
    assert f"Message {damaged.pk} left out of the model's context" in caplog.text
    stored = await ConversationMessage.objects.aget(pk=damaged.pk)
    assert stored.content == {"_type": "AIMessage", "_value": {"content": 42}}  # untouched


async def test_a_fast_stream_is_relayed_in_batches(llm, conversation):
    chunks = [f"{i % 10}" for i in range(300)]
    llm.reply_text(chunks)  # as fast as the server can write
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        await wait_for_result(await start_turn(conversation=conversation, content="go"))
        await listener.until_type("message.completed")
    deltas = listener.of_type("message.delta")
    # Batched over CONFAB_DELTA_FLUSH_SECONDS, not one channel-layer message per token.
    assert 1 <= len(deltas) < len(chunks) / 5
    assert "".join(d["delta"] for d in deltas) == "".join(chunks)
