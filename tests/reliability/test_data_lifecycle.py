"""Deleting and clearing are complete and atomic, also while a turn runs.

- Clearing a conversation while a turn with tool calls streams (during the
  tool-call round, or during the answer after the tool ran), over REST or
  GraphQL: the conversation is empty at once and stays empty after the turn
  would have ended; the turn writes nothing more (no message lands in the
  cleared conversation), calls the model no more, and the conversation works
  again at once.
- A clear is all or nothing for concurrent readers: they see the whole
  history or none of it, never part.
- Deleting a conversation (REST, GraphQL) or a user while a turn runs removes
  every row that belonged to it (messages, tokens), writes nothing after, and
  closes the conversation's sockets; other users' data is untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from knox.models import get_token_model
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import ChatRoom, Conversation, ConversationMessage
from conversations.services.messages import build_message
from tests.support.fakeopenai import ToolCall
from tests.support.live_clients import arows, auth, chat_socket, frames_until, recv_json

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER = [f"a{i} " for i in range(40)]  # 40 x 0.05 s: about 2 s of answer


def script_tool_turn(llm: Any) -> float:
    """A turn that calls the calculator (slowly streamed), then answers slowly; returns
    about how long it lasts."""
    llm.reply_tool_calls(
        [ToolCall("calculator", {"expression": "6*7"}, fragments=20)],
        content=["Let ", "me ", "compute. "],
        chunk_delay=0.05,
    )
    llm.reply_text(ANSWER, chunk_delay=0.05)
    return 0.05 * (3 + 1 + 20) + 0.05 * len(ANSWER)


async def clear_over(surface: str, client: httpx.AsyncClient, conversation_id: int) -> None:
    if surface == "rest":
        response = await client.post(f"/api/v1/conversations/{conversation_id}/clear/")
        assert response.status_code == 200, response.text
    else:
        query = "mutation($id: ID!) { clearConversation(id: $id) { deletedMessageCount } }"
        response = await client.post(
            "/graphql/", json={"query": query, "variables": {"id": str(conversation_id)}}
        )
        assert response.json()["data"]["clearConversation"]["deletedMessageCount"] >= 2


def in_tool_round(frame: dict) -> bool:
    """Round one (the reply that calls the tool) is streaming."""
    return frame["type"] == "message.delta" and frame["index"] >= 1


def in_answer_round(tool_seen: list[bool]) -> Any:
    def done(frame: dict) -> bool:
        if frame["type"] == "message.created" and frame["message"]["role"] == "tool":
            tool_seen.append(True)
        return bool(tool_seen) and frame["type"] == "message.delta" and frame["offset"] > 0

    return done


@pytest.mark.parametrize("surface", ["rest", "graphql"])
@pytest.mark.parametrize("moment", ["tool-call round", "answer round"])
async def test_clear_during_a_tool_turn_leaves_nothing_behind(
    live_server_factory, llm, user, token, assistant, surface, moment
):
    server = live_server_factory()
    conversation = await sync_to_async(services.create_conversation)(user=user, agent=assistant)
    client = httpx.AsyncClient(base_url=server.url, headers=auth(token), timeout=30)
    socket, _ = await chat_socket(server, conversation.pk, token)
    duration = script_tool_turn(llm)
    started = time.monotonic()
    await socket.send(json.dumps({"type": "message", "content": "what is 6*7?"}))
    point = in_tool_round if moment == "tool-call round" else in_answer_round([])
    await frames_until(socket, point)
    requests_before = len(llm.requests)

    await clear_over(surface, client, conversation.pk)
    assert await arows(conversation.pk) == []  # empty at once...
    # ...and it stays empty until well after the turn would have ended.
    after_clear: list[dict] = []
    while time.monotonic() < started + duration + 1.5:
        assert await arows(conversation.pk) == []
        with contextlib.suppress(TimeoutError):
            after_clear.append(await recv_json(socket, 0.1))
    fresh = await Conversation.objects.aget(pk=conversation.pk)
    assert (fresh.message_count, fresh.active_turn_id, fresh.last_message_at) == (0, None, None)
    # The turn stopped where it was: no further model call, no new or finished message.
    assert len(llm.requests) == requests_before
    cleared = next(i for i, f in enumerate(after_clear) if f["type"] == "conversation.cleared")
    late = [f["type"] for f in after_clear[cleared:] if f["type"].startswith("message.")]
    assert set(late) <= {"message.delta"}, late  # deltas already on their way, at most

    # The conversation is usable again at once (the script's unused answer is dropped).
    llm.reset()
    llm.reply_text(["fresh ", "start"])
    await socket.send(json.dumps({"type": "message", "content": "again"}))
    await frames_until(
        socket, lambda f: f["type"] == "message.completed" and f["message"]["role"] == "ai"
    )
    assert [(r["role"], r["text"]) for r in await arows(conversation.pk)] == [
        ("human", "again"),
        ("ai", "fresh start"),
    ]
    await socket.close()
    await client.aclose()


def long_history(conversation: Conversation, count: int) -> None:
    rows = [
        build_message(conversation=conversation, message=HumanMessage(f"m{i}"))
        for i in range(count)
    ]
    ConversationMessage.objects.bulk_create(rows)
    Conversation.objects.filter(pk=conversation.pk).update(message_count=count)


def test_clear_is_all_or_nothing_for_readers(conversation, transactional_db):
    total = 5_000
    long_history(conversation, total)
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT (SELECT count(*) FROM conversations_conversationmessage "
                        "WHERE conversation_id = %s), (SELECT message_count FROM "
                        "conversations_conversation WHERE id = %s)",
                        [conversation.pk, conversation.pk],
                    )
                    seen.add(cursor.fetchone())
        finally:
            connection.close()

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    time.sleep(0.2)
    deleted = services.clear_conversation(conversation=conversation)
    time.sleep(0.2)
    stop.set()
    for thread in readers:
        thread.join()
    assert deleted == total
    # Each reader saw the whole history or none of it; rows and counter always agree.
    assert seen == {(total, total), (0, 0)}, seen


async def closed_code(socket: Any) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await recv_json(socket, 10)
    return closed.value.rcvd.code


@pytest.mark.parametrize("surface", ["rest", "graphql"])
async def test_deleting_a_conversation_mid_turn(
    live_server_factory, llm, user, token, other_user, plain_agent, surface
):
    server = live_server_factory()
    conversation = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    others = await sync_to_async(services.create_conversation)(user=other_user, agent=plain_agent)
    await sync_to_async(services.append_message)(conversation=others, message=AIMessage("theirs"))
    untouched = await arows(others.pk)
    socket, _ = await chat_socket(server, conversation.pk, token)
    llm.reply_text(ANSWER, chunk_delay=0.05)
    started = time.monotonic()
    await socket.send(json.dumps({"type": "message", "content": "soon gone"}))
    await frames_until(socket, lambda f: f["type"] == "message.delta" and f["index"] >= 3)

    async with httpx.AsyncClient(base_url=server.url, headers=auth(token)) as client:
        if surface == "rest":
            response = await client.delete(f"/api/v1/conversations/{conversation.pk}/")
            assert response.status_code == 204
        else:
            query = "mutation($id: ID!) { deleteConversation(id: $id) { deletedId } }"
            variables = {"id": str(conversation.pk)}
            response = await client.post("/graphql/", json={"query": query, "variables": variables})
            assert response.json()["data"]["deleteConversation"]["deletedId"] == str(
                conversation.pk
            )
    assert await closed_code(socket) == 4404  # the socket learns it is gone
    while time.monotonic() < started + 0.05 * len(ANSWER) + 1.5:
        assert not await Conversation.objects.filter(pk=conversation.pk).aexists()
        assert await arows(conversation.pk) == []
        await asyncio.sleep(0.1)
    assert await arows(others.pk) == untouched


async def test_deleting_a_user_mid_turn_removes_everything_of_theirs(
    live_server_factory, llm, user, token, other_user, other_token, plain_agent
):
    server = live_server_factory()

    @sync_to_async
    def build() -> tuple[Conversation, Conversation]:
        mine = services.create_conversation(user=user, agent=plain_agent)
        for i in range(3):
            services.append_message(conversation=mine, message=HumanMessage(f"old {i}"))
        ChatRoom.objects.create(user=user, agent=plain_agent)
        theirs = services.create_conversation(user=other_user, agent=plain_agent)
        services.append_message(conversation=theirs, message=HumanMessage("keep me"))
        return mine, theirs

    mine, theirs = await build()
    untouched = await arows(theirs.pk)
    socket, _ = await chat_socket(server, mine.pk, token)
    llm.reply_text(ANSWER, chunk_delay=0.05)
    started = time.monotonic()
    await socket.send(json.dumps({"type": "message", "content": "last words"}))
    await frames_until(socket, lambda f: f["type"] == "message.delta" and f["index"] >= 3)

    await sync_to_async(get_user_model().objects.filter(pk=user.pk).delete)()

    @sync_to_async
    def leftovers() -> list[int]:
        return [
            Conversation.objects.filter(user_id=user.pk).count(),
            ConversationMessage.objects.filter(conversation_id=mine.pk).count(),
            ConversationMessage.objects.filter(user_id=user.pk).count(),
            get_token_model().objects.filter(user_id=user.pk).count(),
            ChatRoom.objects.filter(user_id=user.pk).count(),
        ]

    while time.monotonic() < started + 0.05 * len(ANSWER) + 1.5:
        assert await leftovers() == [0, 0, 0, 0, 0]
        await asyncio.sleep(0.1)
    # The deleted user's token no longer opens anything.
    async with httpx.AsyncClient(base_url=server.url, headers=auth(token)) as client:
        assert (await client.get("/api/v1/auth/me/")).status_code == 401
    await socket.close()
    assert await arows(theirs.pk) == untouched
    async with httpx.AsyncClient(base_url=server.url, headers=auth(other_token)) as client:
        assert (await client.get(f"/api/v1/conversations/{theirs.pk}/")).status_code == 200
