"""Automatic titles (conversations/titles): generated after the first reply of an untitled
conversation by its own model (the local fake OpenAI server), in the background, announced
on every live surface; never over a user's title, never failing or delaying the turn.

Titles are off in the test settings (every other test would see one more provider request
and event); the `titles_on` fixture turns them on here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from backend.asgi import application
from conversations.events import conversation_group, user_group
from conversations.llm.titling import TITLE_INSTRUCTIONS, clean_title
from conversations.models import Conversation, MessageStatus, TitleSource
from conversations.services import create_conversation
from conversations.sync.models import Change, ChangeKind
from conversations.titles import generation
from conversations.turns import start_greeting, start_turn, wait_for_result
from tests.support.graphql import GraphQLHTTP, GraphQLSocket, db, wait_for_members
from tests.support.sockets import Socket, ws_path
from tests.support.turns import (
    GroupListener,
    eventually,
    turn_cleanup,  # noqa: F401 - autouse fixture: turns and title tasks end in the test
)

pytestmark = pytest.mark.django_db(transaction=True)

TITLE_MAX_TOKENS = 24
EVENTS = """
subscription($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename
    ... on MessageCompleted { message { id status } }
    ... on ConversationUpdated { conversation { id title } }
  }
}
"""
CHANGES = """
subscription { conversationsChanged { __typename
  ... on ConversationUpdated { conversation { id title } } } }
"""
UPDATE = """
mutation($id: ID!, $title: String) {
  updateConversation(id: $id, title: $title) { conversation { id title } errors { code } }
}
"""


@pytest.fixture
def titles_on(settings):
    settings.CONFAB_AUTO_TITLES = True
    settings.CONFAB_TITLE_MAX_TOKENS = TITLE_MAX_TOKENS
    settings.CONFAB_TITLE_TIMEOUT = 5.0
    return settings


@pytest.fixture
def untitled(user, plain_agent) -> Conversation:
    return create_conversation(user=user, agent=plain_agent)


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def fresh(conversation: Conversation) -> Conversation:
    return await Conversation.objects.aget(pk=conversation.pk)


def title_requests(llm) -> list:
    return [
        r for r in llm.requests if r.messages and r.messages[0]["content"] == TITLE_INSTRUCTIONS
    ]


async def run_turn_to_end(conversation: Conversation, content: str = "How do I bake bread?"):
    handle = await start_turn(conversation=conversation, content=content)
    return await wait_for_result(handle, timeout=10)


# --- the title arrives after the first reply ---------------------------------------


async def test_a_title_is_generated_after_the_first_reply(titles_on, llm, untitled):
    llm.reply_text(["Knead, ", "rest, ", "bake."])
    llm.reply_text(['"Baking', " bread at", ' home."'], usage=(40, 4))
    async with GroupListener(
        conversation_group(untitled.pk), user_group(untitled.user_id)
    ) as listener:
        result = await run_turn_to_end(untitled)
        assert result.ai_message.status == MessageStatus.COMPLETE
        assert result.ai_message.text == "Knead, rest, bake."
        titled = await listener.until(
            lambda e: e["type"] == "conversation.updated" and e["conversation"]["title"]
        )
    assert titled["conversation"]["title"] == "Baking bread at home"
    # After the reply was complete and announced.
    kinds = [event["type"] for event in listener.events]
    assert kinds.index("message.completed") < listener.events.index(titled)

    stored = await fresh(untitled)
    assert stored.title == "Baking bread at home"
    assert stored.title_source == TitleSource.AUTO
    assert stored.title_attempted_at is not None

    # The conversation's own model, bounded output, the first exchange as input.
    turn_request, title_request = llm.requests
    assert title_requests(llm) == [title_request]
    assert title_request.body["model"] == turn_request.body["model"] == "test-model"
    assert title_request.body["max_completion_tokens"] == TITLE_MAX_TOKENS
    assert "max_completion_tokens" not in turn_request.body
    asked = title_request.messages[1]["content"]
    assert "How do I bake bread?" in asked and "Knead, rest, bake." in asked

    # In the changes feed too: the conversation's last change is an upsert after the title.
    last = await Change.objects.filter(user_id=untitled.user_id).order_by("-seq").afirst()
    assert (last.kind, last.conversation_id) == (ChangeKind.CONVERSATION_UPSERTED, untitled.pk)


async def test_the_title_reaches_the_chat_websocket_and_graphql_subscriptions(
    titles_on, llm, untitled, token
):
    llm.reply_text(["Sure."])
    llm.reply_text(["Weekend trip plans"])
    gql = GraphQLSocket()
    await gql.connect(token)
    await gql.subscribe("events", EVENTS, {"id": untitled.pk})
    snapshot = (await gql.next_data("events"))["conversationEvents"]
    assert snapshot["conversation"]["title"] == ""
    await gql.subscribe("changes", CHANGES)
    await wait_for_members(user_group(untitled.user_id))

    ws = Socket(ws_path(untitled.pk), token)
    assert (await ws.connect())["type"] == "ready"
    await ws.send({"type": "message", "content": "Plan my weekend trip"})
    completed = await ws.until("message.completed")
    assert completed["message"]["text"] == "Sure."
    frame = await ws.until("conversation.updated", timeout=10)
    while frame["conversation"]["title"] != "Weekend trip plans":
        frame = await ws.until("conversation.updated", timeout=10)
    assert frame["conversation"]["id"] == untitled.pk

    seen: dict[str, list[str]] = {"events": [], "changes": []}
    while not ("Weekend trip plans" in seen["events"] and "Weekend trip plans" in seen["changes"]):
        message = await gql.receive()
        assert message["type"] == "next", message
        data = message["payload"]["data"]
        event = data.get("conversationEvents") or data.get("conversationsChanged")
        if event["__typename"] == "ConversationUpdated":
            seen[message["id"]].append(event["conversation"]["title"])
    await ws.close()
    await gql.close()


async def test_the_title_reaches_the_sse_event_stream(titles_on, llm, untitled, user):
    from api.rest.sse import open_conversation_stream
    from conversations.resume import Position
    from tests.support.rest import parse_sse

    llm.reply_text(["Fine."])
    llm.reply_text(["Checking in"])
    stream = await open_conversation_stream(
        user=user, conversation_id=untitled.pk, position=Position()
    )
    body = ""
    try:
        await run_turn_to_end(untitled, "How are you?")

        def titled() -> list[dict]:
            return [
                e
                for e in parse_sse(body)
                if e["event"] == "conversation.updated"
                and e["data"]["conversation"]["title"] == "Checking in"
            ]

        while not titled():
            body += (await asyncio.wait_for(anext(stream), 10)).decode()
    finally:
        await stream.aclose()
    assert titled()[0]["data"]["conversation_id"] == untitled.pk


async def test_the_demo_model_names_the_conversation_after_the_users_words(
    titles_on, settings, untitled
):
    settings.CONFAB_LLM_PROVIDER = "demo"
    result = await run_turn_to_end(untitled, "what is  the capital of France, and why?")
    assert result.ai_message.text.startswith("[offline demo model]")
    await generation.drain()
    assert (await fresh(untitled)).title == "What is the capital of France"


# --- never over the user's title -----------------------------------------------------


async def test_a_title_given_by_the_user_is_kept_and_no_title_call_is_made(
    titles_on, llm, conversation
):
    await run_turn_to_end(conversation)
    await generation.drain()
    assert (await fresh(conversation)).title == "Test chat"
    assert title_requests(llm) == [] and len(llm.requests) == 1


async def test_a_title_set_over_rest_while_one_is_generated_wins(
    titles_on, llm, untitled, token, client
):
    llm.reply_text(["Answer."])
    llm.reply_text(["Generated title"], initial_delay=0.8)
    async with GroupListener(conversation_group(untitled.pk)) as listener:
        await run_turn_to_end(untitled)
        await eventually(lambda: title_requests(llm), what="the title request")
        response = await client.patch(
            f"/api/v1/conversations/{untitled.pk}/",
            json={"title": "Mine"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200 and response.json()["title"] == "Mine"
        await generation.drain()
        await listener.drain()
    stored = await fresh(untitled)
    assert (stored.title, stored.title_source) == ("Mine", TitleSource.USER)
    titles = [e["conversation"]["title"] for e in listener.of_type("conversation.updated")]
    assert "Generated title" not in titles and titles[-1] == "Mine"


async def test_a_title_cleared_over_graphql_while_one_is_generated_stays_empty(
    titles_on, llm, untitled, token, client
):
    llm.reply_text(["Answer."])
    llm.reply_text(["Generated title"], initial_delay=0.8)
    await run_turn_to_end(untitled)
    await eventually(lambda: title_requests(llm), what="the title request")
    # The user clears the (still empty) title: their choice, kept.
    body = await GraphQLHTTP(client).data(UPDATE, {"id": untitled.pk, "title": ""}, token=token)
    assert body["updateConversation"]["errors"] in (None, [])
    await generation.drain()
    stored = await fresh(untitled)
    assert (stored.title, stored.title_source) == ("", TitleSource.USER)


# --- a failed, slow or empty title leaves the title empty and the turn intact ---------


@pytest.mark.parametrize(
    "title_step",
    [
        pytest.param({"type": "error", "status": 500}, id="provider-error"),
        pytest.param({"type": "text", "deltas": ['  "" \n']}, id="empty-answer"),
        pytest.param({"type": "text", "deltas": ["Too late"], "initial_delay": 2.0}, id="slow"),
    ],
)
async def test_a_failed_title_leaves_it_empty_and_the_turn_intact(
    titles_on, llm, untitled, title_step, caplog
):
    titles_on.CONFAB_TITLE_TIMEOUT = 0.5
    llm.reply_text(["The ", "answer."])
    llm.enqueue(title_step)
    with caplog.at_level(logging.WARNING, logger="conversations.titles.generation"):
        result = await run_turn_to_end(untitled)
        assert result.ai_message.status == MessageStatus.COMPLETE
        assert result.ai_message.text == "The answer."
        assert result.ai_message.error is None
        await eventually(lambda: title_requests(llm), what="the title request")
        await generation.drain()
    stored = await fresh(untitled)
    assert stored.title == "" and stored.title_source == TitleSource.NONE
    assert stored.title_attempted_at is not None
    assert any("left empty" in r.message or "empty" in r.message for r in caplog.records)
    # One attempt: the next reply does not ask again.
    await run_turn_to_end(untitled, "And then?")
    await generation.drain()
    assert len(title_requests(llm)) == 1 and (await fresh(untitled)).title == ""


async def test_the_turn_ends_before_its_title_is_generated(titles_on, llm, untitled):
    llm.reply_text(["Quick."])
    llm.reply_text(["Slow title"], initial_delay=1.0)
    handle = await start_turn(conversation=untitled, content="hi")
    result = await wait_for_result(handle, timeout=10)
    # The turn's task (what every surface awaits) is done while the title is asked for.
    assert handle.task.done() and result.ai_message.text == "Quick."
    await eventually(lambda: title_requests(llm), what="the title request")
    assert (await fresh(untitled)).title == ""
    await generation.drain()
    assert (await fresh(untitled)).title == "Slow title"


# --- one title per conversation, bounded per process ---------------------------------


async def test_a_second_turn_does_not_retitle(titles_on, llm, untitled):
    stale = await fresh(untitled)  # another process's copy, read before the title
    llm.reply_text(["One."])
    llm.reply_text(["First title"])
    await run_turn_to_end(untitled)
    await generation.drain()
    assert (await fresh(untitled)).title == "First title"
    # The same copy: it knows its attempt was taken.
    await run_turn_to_end(untitled, "Something else entirely")
    # A stale copy (title "", no attempt): the stored row decides, no second call.
    await run_turn_to_end(stale, "And another thing")
    await generation.drain()
    assert len(title_requests(llm)) == 1 and len(llm.requests) == 4
    assert (await fresh(untitled)).title == "First title"


async def test_a_greeting_leaves_the_title_to_the_users_first_message(titles_on, llm, user, tutor):
    untitled = await db(create_conversation, user=user, agent=tutor)
    llm.reply_text(["안녕하세요!"])
    await wait_for_result(await start_greeting(conversation=untitled))
    await generation.drain()
    assert title_requests(llm) == [] and (await fresh(untitled)).title == ""
    llm.reply_text(["라떼 주세요."])
    llm.reply_text(["Ordering a latte"])
    await run_turn_to_end(untitled, "라떼 한 잔 주세요")
    await generation.drain()
    assert (await fresh(untitled)).title == "Ordering a latte"


async def test_title_calls_are_capped_per_process(titles_on, llm, user, plain_agent):
    titles_on.CONFAB_TITLE_MAX_CONCURRENT = 1
    first = await db(create_conversation, user=user, agent=plain_agent)
    second = await db(create_conversation, user=user, agent=plain_agent)
    llm.reply_text(["One."])
    llm.reply_text(["Held title"], initial_delay=1.0)
    await run_turn_to_end(first)
    await eventually(lambda: title_requests(llm), what="the first title request")
    llm.reply_text(["Two."])
    await run_turn_to_end(second)
    await asyncio.sleep(0.2)
    # At the cap: skipped without spending the attempt, so a later reply titles it.
    assert len(title_requests(llm)) == 1
    assert (await fresh(second)).title_attempted_at is None
    await generation.drain()
    llm.reply_text(["Three."])
    llm.reply_text(["Second title"])
    await run_turn_to_end(second, "again")
    await generation.drain()
    assert (await fresh(first)).title == "Held title"
    assert (await fresh(second)).title == "Second title"


# --- cleaning the model's answer -----------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ('"Baking bread."', "Baking bread"),
        ("Title: **Trip to Lisbon**\n\nHope that helps!", "Trip to Lisbon"),
        ("\n\n  « Voyage   à Paris »  ", "Voyage à Paris"),
        ("\u201cWhy is the sky blue?\u201d", "Why is the sky blue?"),
        ("   \n ", ""),
        ('""', ""),
    ],
)
def test_clean_title(answer, title):
    assert clean_title(answer, max_chars=200) == title


def test_clean_title_fits_the_title_field():
    long = "word " * 100
    cleaned = clean_title(long, max_chars=200)
    assert len(cleaned) <= 200 and cleaned.endswith("word")
    assert clean_title("x" * 500, max_chars=200) == "x" * 200


# --- the migration: existing conversations are not titled after the fact --------------


def test_the_migration_spends_the_attempt_of_existing_conversations(user, plain_agent):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("conversations.migrations.0011_auto_titles")
    named = create_conversation(user=user, agent=plain_agent, title="Named")
    used = create_conversation(user=user, agent=plain_agent)
    fresh_one = create_conversation(user=user, agent=plain_agent)
    # As the rows were before the migration.
    Conversation.objects.update(title_source="", title_attempted_at=None)
    Conversation.objects.filter(pk=used.pk).update(message_count=2)

    migration.mark_existing(apps, None)

    rows = {c.pk: c for c in Conversation.objects.all()}
    assert rows[named.pk].title_source == TitleSource.USER
    assert rows[named.pk].title_attempted_at is not None
    assert rows[used.pk].title_source == TitleSource.NONE
    assert rows[used.pk].title_attempted_at is not None
    assert generation.needs_title(rows[fresh_one.pk])
