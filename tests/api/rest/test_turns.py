"""Turns over REST, through httpx against the ASGI application: JSON and SSE,
idempotency, one turn at a time, cancel, regenerate, tool calls, limits."""

from __future__ import annotations

import asyncio

import pytest
from knox.models import get_token_model

from conversations.models import Conversation, ConversationMessage, MessageRole
from conversations.payloads import message_payload
from conversations.services import create_conversation
from tests.support.fakeopenai import ToolCall
from tests.support.rest import assert_error, bearer, parse_sse, with_rates

pytestmark = pytest.mark.django_db(transaction=True)

SSE = {"Accept": "text/event-stream"}


def messages_url(conversation: Conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/"


def action_url(conversation: Conversation, action: str) -> str:
    return f"/api/v1/conversations/{conversation.pk}/{action}/"


async def stored(message_id: int) -> dict:
    return message_payload(await ConversationMessage.objects.aget(pk=message_id))


async def wait_until_running(conversation: Conversation, timeout: float = 5.0) -> None:
    """Until the conversation's turn lock is taken and its reply has begun streaming."""
    for _ in range(int(timeout / 0.02)):
        row = await Conversation.objects.aget(pk=conversation.pk)
        if row.active_turn_id is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the turn did not start")


def position_key(event_id: str) -> tuple[int, float]:
    """An SSE id (`<message_id>` or `<message_id>:<offset>`) as a sortable key."""
    message_id, _, offset = event_id.partition(":")
    return int(message_id), float(offset) if offset else float("inf")


def assert_stream_shape(events: list[dict]) -> None:
    """Ids are positions that never go back; each `event:` line names the data's type."""
    keys = [position_key(e["id"]) for e in events]
    assert keys == sorted(keys), [e["id"] for e in events]
    for event in events:
        assert event["event"] == event["data"]["type"]


def deltas_of(events: list[dict], message_id: int) -> str:
    return "".join(
        e["data"]["delta"]
        for e in events
        if e["event"] == "message.delta" and e["data"]["message_id"] == message_id
    )


# --- JSON ---------------------------------------------------------------------


async def test_send_waits_for_the_turn_and_returns_both_messages(asgi, llm, token, conversation):
    llm.reply_text(["Hel", "lo!"], usage=(7, 2))

    response = await asgi.post(
        messages_url(conversation), json={"content": "Hi there"}, headers=bearer(token)
    )

    assert response.status_code == 201, response.text
    assert response.headers["Idempotent-Replayed"] == "false"
    body = response.json()
    assert set(body) == {"human_message", "ai_message"}
    human, ai = body["human_message"], body["ai_message"]
    assert human["role"] == "human" and human["text"] == "Hi there"
    assert ai["role"] == "ai" and ai["status"] == "complete" and ai["text"] == "Hello!"
    assert ai["usage"] == {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9}
    assert ai["turn_id"] == human["turn_id"]
    assert human == await stored(human["id"])
    assert ai == await stored(ai["id"])
    assert llm.requests[0].body["messages"][-1] == {"role": "user", "content": "Hi there"}


async def test_failed_reply_is_returned_as_failed(asgi, llm, token, conversation):
    llm.reply_error(500)

    response = await asgi.post(
        messages_url(conversation), json={"content": "Hi"}, headers=bearer(token)
    )

    assert response.status_code == 201
    ai = response.json()["ai_message"]
    assert ai["status"] == "failed" and ai["error"]["code"] == "provider_error"
    assert await stored(response.json()["human_message"]["id"])  # the human message is kept


async def test_same_client_message_id_twice_is_one_turn(asgi, llm, token, conversation):
    llm.reply_text(["Only", " once"])
    payload = {"content": "Hi", "client_message_id": "4b1c0d3e-retry"}
    url = messages_url(conversation)

    first = await asgi.post(url, json=payload, headers=bearer(token))
    again = await asgi.post(url, json=payload, headers=bearer(token))

    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(llm.requests) == 1
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 2


async def test_concurrent_retries_are_one_turn(asgi, llm, token, conversation):
    llm.reply_text(["Slow", " but", " single"], chunk_delay=0.1)
    payload = {"content": "Hi", "client_message_id": "same"}
    url = messages_url(conversation)

    responses = await asyncio.gather(
        *(asgi.post(url, json=payload, headers=bearer(token)) for _ in range(3))
    )

    assert sorted(r.status_code for r in responses) == [200, 200, 201]
    assert {r.json()["ai_message"]["text"] for r in responses} == {"Slow but single"}
    assert len(llm.requests) == 1


async def test_a_second_turn_while_one_runs_is_409(asgi, llm, token, conversation):
    llm.reply_text(["a", "b", "c", "d", "e"], chunk_delay=0.2)
    url = messages_url(conversation)
    first = asyncio.ensure_future(asgi.post(url, json={"content": "one"}, headers=bearer(token)))
    await wait_until_running(conversation)

    for headers in (bearer(token), {**bearer(token), **SSE}):
        busy = await asgi.post(url, json={"content": "two"}, headers=headers)
        body = assert_error(busy, 409, "TURN_IN_PROGRESS")
        assert body["type"] == "conflict"
    assert_error(
        await asgi.post(action_url(conversation, "regenerate"), headers=bearer(token)),
        409,
        "TURN_IN_PROGRESS",
    )

    assert (await first).status_code == 201
    assert len(llm.requests) == 1
    texts = [m.text async for m in ConversationMessage.objects.filter(role=MessageRole.HUMAN)]
    assert texts == ["one"]


async def test_reply_slower_than_the_wait_is_202(asgi, llm, token, conversation, settings):
    settings.CONFAB_LLM_TIMEOUT = 0.5
    settings.CONFAB_TOOL_MAX_ROUNDS = 0  # the wait is LLM_TIMEOUT * (rounds + 2) = 1 s
    llm.reply_text(["s", "l", "o", "w", "!", "!", "!"], chunk_delay=0.25)

    response = await asgi.post(
        messages_url(conversation), json={"content": "Hi"}, headers=bearer(token)
    )

    assert response.status_code == 202
    ai = response.json()["ai_message"]
    assert ai["status"] == "streaming"
    for _ in range(100):  # the turn goes on and completes
        if (await stored(ai["id"]))["status"] == "complete":
            break
        await asyncio.sleep(0.05)
    assert (await stored(ai["id"]))["text"] == "slow!!!"


# --- SSE ----------------------------------------------------------------------


async def test_event_stream_of_a_turn(asgi, llm, token, conversation):
    llm.reply_text(["The ", "quick ", "brown ", "fox"], chunk_delay=0.05, usage=(5, 4))

    response = await asgi.post(
        messages_url(conversation), json={"content": "Go"}, headers={**bearer(token), **SSE}
    )

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    events = parse_sse(response.text)
    assert_stream_shape(events)
    types = [e["event"] for e in events]
    assert types[:2] == ["message.created", "message.created"]
    assert events[0]["data"]["message"]["role"] == "human"
    ai_id = events[1]["data"]["message"]["id"]
    assert set(types[2:-1]) == {"message.delta"}
    assert types[-1] == "message.completed"
    final = events[-1]["data"]["message"]
    assert final["id"] == ai_id and final["status"] == "complete"
    assert deltas_of(events, ai_id) == final["text"] == "The quick brown fox"
    assert final == await stored(ai_id)
    offsets = [e["data"]["offset"] for e in events if e["event"] == "message.delta"]
    assert offsets == sorted(offsets) and offsets[0] == 0


async def test_event_stream_of_a_failed_turn(asgi, llm, token, conversation):
    llm.reply_broken_stream(["Half", " a", " reply"], die_after=2)

    response = await asgi.post(
        messages_url(conversation), json={"content": "Go"}, headers={**bearer(token), **SSE}
    )

    events = parse_sse(response.text)
    assert_stream_shape(events)
    last = events[-1]
    assert last["event"] == "message.failed"
    assert last["data"]["error"]["code"] == "provider_stream_interrupted"
    message = last["data"]["message"]
    assert message["status"] == "failed" and message["text"] == "Half a"
    assert message == await stored(message["id"])
    # The batched text is flushed before the failure, so deltas add up to it.
    assert deltas_of(events, message["id"]) == message["text"]


@pytest.fixture
def tool_conversation(user, assistant) -> Conversation:
    return create_conversation(user=user, agent=assistant, title="math")


async def test_event_stream_with_tool_calls_ends_after_the_final_reply(
    asgi, llm, token, tool_conversation
):
    conversation = tool_conversation
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6 * 7"})], content=["Let me "])
    llm.reply_text(["It is ", "42."])

    response = await asgi.post(
        messages_url(conversation), json={"content": "6x7?"}, headers={**bearer(token), **SSE}
    )

    events = parse_sse(response.text)
    assert_stream_shape(events)
    roles = [e["data"]["message"]["role"] for e in events if e["event"] == "message.created"]
    assert roles == ["human", "ai", "tool", "ai"]
    completed = [e["data"]["message"] for e in events if e["event"] == "message.completed"]
    assert [m["text"] for m in completed] == ["Let me ", "It is 42."]
    assert events[-1]["event"] == "message.completed"
    final = events[-1]["data"]["message"]
    assert deltas_of(events, final["id"]) == "It is 42." and final == await stored(final["id"])
    assert len(llm.requests) == 2


async def test_tool_call_turn_over_json_returns_the_final_reply(
    asgi, llm, token, tool_conversation
):
    conversation = tool_conversation
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "2 + 2"})])
    llm.reply_text(["Four."])

    response = await asgi.post(
        messages_url(conversation), json={"content": "2+2?"}, headers=bearer(token)
    )

    assert response.status_code == 201
    assert response.json()["ai_message"]["text"] == "Four."


async def test_repeated_client_message_id_streams_the_stored_turn(asgi, llm, token, conversation):
    llm.reply_text(["Stored", " reply"])
    payload = {"content": "Hi", "client_message_id": "sse-repeat"}
    first = await asgi.post(messages_url(conversation), json=payload, headers=bearer(token))

    response = await asgi.post(
        messages_url(conversation), json=payload, headers={**bearer(token), **SSE}
    )

    assert response.status_code == 200
    assert response.headers["Idempotent-Replayed"] == "true"
    events = parse_sse(response.text)
    assert_stream_shape(events)
    assert [e["event"] for e in events] == ["message.completed", "message.completed"]
    assert events[0]["data"]["message"] == first.json()["human_message"]
    assert events[1]["data"]["message"] == first.json()["ai_message"]
    assert len(llm.requests) == 1


async def test_repeat_while_the_turn_runs_streams_the_rest(asgi, llm, token, conversation):
    llm.reply_text(["a", "b", "c", "d"], chunk_delay=0.2)
    payload = {"content": "Hi", "client_message_id": "mid-turn"}
    url = messages_url(conversation)
    first = asyncio.ensure_future(asgi.post(url, json=payload, headers=bearer(token)))
    await wait_until_running(conversation)

    response = await asgi.post(url, json=payload, headers={**bearer(token), **SSE})

    events = parse_sse(response.text)
    assert_stream_shape(events)
    assert events[0]["event"] == "message.completed"  # the human message, stored
    assert events[1]["event"] == "message.created"  # the reply, still streaming
    assert events[-1]["event"] == "message.completed"
    assert events[-1]["data"]["message"]["text"] == "abcd"
    assert (await first).json()["ai_message"] == events[-1]["data"]["message"]
    assert len(llm.requests) == 1


# --- cancel and regenerate ---------------------------------------------------------


async def test_cancel_ends_the_reply_as_cancelled(asgi, llm, token, conversation):
    llm.reply_text(["one ", "two ", "three ", "four ", "five"], chunk_delay=0.2)
    running = asyncio.ensure_future(
        asgi.post(messages_url(conversation), json={"content": "Count"}, headers=bearer(token))
    )
    await wait_until_running(conversation)
    await asyncio.sleep(0.3)

    cancel = await asgi.post(action_url(conversation, "cancel"), headers=bearer(token))

    assert cancel.status_code == 202
    result = (await running).json()
    assert cancel.json() == {"turn_id": result["ai_message"]["turn_id"]}
    assert result["ai_message"]["status"] == "cancelled"
    assert "five" not in result["ai_message"]["text"]
    assert_error(
        await asgi.post(action_url(conversation, "cancel"), headers=bearer(token)),
        409,
        "NO_ACTIVE_TURN",
    )


async def test_cancel_over_sse_ends_the_stream(asgi, llm, token, conversation):
    llm.reply_text(["one ", "two ", "three ", "four ", "five"], chunk_delay=0.2)
    streaming = asyncio.ensure_future(
        asgi.post(
            messages_url(conversation), json={"content": "Count"}, headers={**bearer(token), **SSE}
        )
    )
    await wait_until_running(conversation)
    await asyncio.sleep(0.3)
    assert (
        await asgi.post(action_url(conversation, "cancel"), headers=bearer(token))
    ).status_code == 202

    events = parse_sse((await streaming).text)
    assert events[-1]["event"] == "message.completed"
    assert events[-1]["data"]["message"]["status"] == "cancelled"


async def test_regenerate_keeps_the_old_reply_as_a_sibling(asgi, llm, token, conversation):
    llm.reply_text(["First"])
    llm.reply_text(["Second"])
    first = (
        await asgi.post(messages_url(conversation), json={"content": "Hi"}, headers=bearer(token))
    ).json()

    response = await asgi.post(action_url(conversation, "regenerate"), headers=bearer(token))

    assert response.status_code == 201
    body = response.json()
    assert body["human_message"]["id"] == first["human_message"]["id"]
    assert body["ai_message"]["text"] == "Second"
    old, new = first["ai_message"]["id"], body["ai_message"]["id"]
    assert new != old
    assert body["ai_message"]["parent_id"] == first["human_message"]["id"]
    assert body["ai_message"]["siblings"] == {"ids": [old, new], "index": 1}
    kept = await ConversationMessage.objects.aget(pk=old)
    assert (kept.text, kept.on_path) == ("First", False)
    assert len(llm.requests) == 2


async def test_regenerate_over_sse(asgi, llm, token, conversation):
    llm.reply_text(["First"])
    llm.reply_text(["Sec", "ond"])
    first = (
        await asgi.post(messages_url(conversation), json={"content": "Hi"}, headers=bearer(token))
    ).json()

    response = await asgi.post(
        action_url(conversation, "regenerate"), headers={**bearer(token), **SSE}
    )

    events = parse_sse(response.text)
    assert_stream_shape(events)
    assert events[-1]["event"] == "message.completed"
    final = events[-1]["data"]["message"]
    assert final["siblings"]["ids"] == [first["ai_message"]["id"], final["id"]]
    switched = [e["data"] for e in events if e["event"] == "conversation.branch_changed"]
    assert [e["active_leaf_id"] for e in switched] == [final["id"]]
    assert deltas_of(events, final["id"]) == final["text"] == "Second"


async def test_regenerate_without_a_human_message_is_409(asgi, llm, token, conversation):
    response = await asgi.post(action_url(conversation, "regenerate"), headers=bearer(token))
    assert_error(response, 409, "NOTHING_TO_REGENERATE")
    assert llm.requests == []


# --- limits and access ------------------------------------------------------------


async def test_turns_have_a_stricter_rate(asgi, llm, token, conversation, settings):
    with_rates(settings, turns="2/hour")
    url = messages_url(conversation)
    for text in ("one", "two"):
        assert (
            await asgi.post(url, json={"content": text}, headers=bearer(token))
        ).status_code == 201

    throttled = await asgi.post(url, json={"content": "three"}, headers=bearer(token))
    assert_error(throttled, 429, "RATE_LIMITED")
    assert int(throttled.headers["Retry-After"]) >= 1
    assert_error(
        await asgi.post(action_url(conversation, "regenerate"), headers=bearer(token)),
        429,
        "RATE_LIMITED",
    )
    # Reading history is not a turn.
    assert (await asgi.get(url, headers=bearer(token))).status_code == 200
    assert len(llm.requests) == 2


async def test_another_users_conversation_is_404_and_runs_nothing(
    asgi, llm, other_token, conversation
):
    for headers in (bearer(other_token), {**bearer(other_token), **SSE}):
        response = await asgi.post(
            messages_url(conversation), json={"content": "hi"}, headers=headers
        )
        assert_error(response, 404, "NOT_FOUND")
    assert_error(
        await asgi.post(action_url(conversation, "cancel"), headers=bearer(other_token)),
        404,
        "NOT_FOUND",
    )
    assert llm.requests == []
    assert not await ConversationMessage.objects.aexists()


async def test_expired_and_revoked_tokens_are_401(asgi, llm, user, token, conversation):
    from datetime import timedelta

    from django.utils import timezone

    url = messages_url(conversation)
    tokens = get_token_model().objects.filter(user=user)
    await tokens.aupdate(expiry=timezone.now() - timedelta(seconds=1))
    response = await asgi.post(url, json={"content": "hi"}, headers=bearer(token))
    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    login = await asgi.post(
        "/api/v1/auth/token/", json={"username": "alice", "password": "alice-password-1"}
    )
    fresh = login.json()["token"]
    assert (await asgi.post("/api/v1/auth/logout/", headers=bearer(fresh))).status_code == 204
    assert_error(await asgi.get(url, headers=bearer(fresh)), 401, "NOT_AUTHENTICATED")
    assert llm.requests == []
