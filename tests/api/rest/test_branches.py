"""Branches over REST: edit a message, regenerate twice, switch back and page the restored
branch, fork, and the errors (through httpx against the ASGI application)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Conversation, ConversationMessage
from tests.support.rest import assert_error, bearer
from tests.support.sockets import Socket, ws_path

pytestmark = pytest.mark.django_db(transaction=True)


def url(conversation: Conversation, tail: str) -> str:
    return f"/api/v1/conversations/{conversation.pk}/{tail}"


async def send(asgi, token, conversation, content: str) -> dict:
    response = await asgi.post(
        url(conversation, "messages/"), json={"content": content}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def page(asgi, token, conversation, **params) -> dict:
    response = await asgi.get(url(conversation, "messages/"), params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def texts(body: dict) -> list[str]:
    return [m["text"] for m in body["results"]]


async def test_edit_regenerate_switch_back_and_page_the_restored_branch(
    asgi, llm, token, conversation
):
    for reply in ("a1", "a2", "a2 edited", "again 1", "again 2"):
        llm.reply_text([reply])
    first = await send(asgi, token, conversation, "q1")
    second = await send(asgi, token, conversation, "q2")

    response = await asgi.post(
        url(conversation, f"messages/{second['human_message']['id']}/edit/"),
        json={"content": "q2 edited", "client_message_id": "edit-1"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    edited = response.json()
    human = edited["human_message"]
    assert (human["text"], human["client_message_id"]) == ("q2 edited", "edit-1")
    assert human["parent_id"] == first["ai_message"]["id"]
    assert human["siblings"] == {"ids": [second["human_message"]["id"], human["id"]], "index": 1}
    assert edited["ai_message"]["text"] == "a2 edited"
    assert texts(await page(asgi, token, conversation)) == ["q1", "a1", "q2 edited", "a2 edited"]

    replies = []
    for _ in range(2):
        response = await asgi.post(url(conversation, "regenerate/"), headers=bearer(token))
        assert response.status_code == 201, response.text
        replies.append(response.json()["ai_message"])
    ids = [edited["ai_message"]["id"], *[r["id"] for r in replies]]
    assert replies[-1]["siblings"] == {"ids": ids, "index": 2}
    newest = await page(asgi, token, conversation)
    assert texts(newest) == ["q1", "a1", "q2 edited", "again 2"]
    assert newest["results"][-1]["siblings"] == {"ids": ids, "index": 2}

    # Back to the first version of q2: its old reply is the branch's newest leaf.
    response = await asgi.post(
        url(conversation, "branch/"),
        json={"message_id": second["human_message"]["id"]},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active_leaf_id"] == second["ai_message"]["id"]
    assert body["last_message"]["id"] == second["ai_message"]["id"]
    restored = await page(asgi, token, conversation, limit=2)
    assert texts(restored) == ["q2", "a2"] and restored["has_older"]
    older = await page(asgi, token, conversation, before=restored["older_cursor"], limit=2)
    assert texts(older) == ["q1", "a1"] and not older["has_older"] and older["has_newer"]
    newer = await page(asgi, token, conversation, after=older["newer_cursor"], limit=5)
    assert texts(newer) == ["q2", "a2"] and not newer["has_newer"]
    assert restored["results"][0]["siblings"]["index"] == 0

    # Every version is still readable by id.
    for message_id in ids:
        response = await asgi.get(
            url(conversation, f"messages/{message_id}/"), headers=bearer(token)
        )
        assert response.status_code == 200
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 8


async def test_a_repeated_edit_returns_the_first_turn(asgi, llm, token, conversation):
    llm.reply_text(["a"])
    llm.reply_text(["b"])
    sent = await send(asgi, token, conversation, "q")
    body = {"content": "q2", "client_message_id": "same"}
    edit_url = url(conversation, f"messages/{sent['human_message']['id']}/edit/")
    first = await asgi.post(edit_url, json=body, headers=bearer(token))
    again = await asgi.post(edit_url, json=body, headers=bearer(token))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["human_message"]["id"] == first.json()["human_message"]["id"]
    assert len(llm.requests) == 2


async def test_edit_errors(asgi, llm, token, other_token, conversation):
    llm.reply_text(["a"])
    sent = await send(asgi, token, conversation, "q")
    ai_edit = url(conversation, f"messages/{sent['ai_message']['id']}/edit/")
    body = assert_error(
        await asgi.post(ai_edit, json={"content": "x"}, headers=bearer(token)),
        400,
        "VALIDATION_ERROR",
    )
    assert "message_id" in body["fields"]
    human_edit = url(conversation, f"messages/{sent['human_message']['id']}/edit/")
    for bad in ({}, {"content": ""}, {"content": 5}, {"content": "x", "extra": 1}):
        response = await asgi.post(human_edit, json=bad, headers=bearer(token))
        assert_error(response, 400, "VALIDATION_ERROR")
    assert_error(
        await asgi.post(
            url(conversation, "messages/999999/edit/"), json={"content": "x"}, headers=bearer(token)
        ),
        404,
        "NOT_FOUND",
    )
    # Someone else's conversation: not found, whatever the message.
    assert_error(
        await asgi.post(human_edit, json={"content": "x"}, headers=bearer(other_token)),
        404,
        "NOT_FOUND",
    )
    assert len(llm.requests) == 1


async def test_edit_and_switch_while_a_turn_runs_are_409(asgi, llm, token, conversation):
    llm.reply_text(["a"])
    sent = await send(asgi, token, conversation, "q")
    llm.reply_text(["slow ", "reply"], chunk_delay=0.5)
    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    await socket.send({"type": "message", "content": "next"})
    await socket.until("message.created", role="ai")
    edit = await asgi.post(
        url(conversation, f"messages/{sent['human_message']['id']}/edit/"),
        json={"content": "x"},
        headers=bearer(token),
    )
    assert_error(edit, 409, "TURN_IN_PROGRESS")
    switch = await asgi.post(
        url(conversation, "branch/"),
        json={"message_id": sent["ai_message"]["id"]},
        headers=bearer(token),
    )
    assert_error(switch, 409, "TURN_IN_PROGRESS")
    await socket.until("message.completed", role="ai")
    await socket.close()


async def test_a_switch_reaches_a_second_device_live(asgi, llm, token, conversation):
    llm.reply_text(["one"])
    llm.reply_text(["two"])
    first = await send(asgi, token, conversation, "q")
    await asgi.post(url(conversation, "regenerate/"), headers=bearer(token))
    device = Socket(ws_path(conversation.pk), token)
    await device.connect()
    response = await asgi.post(
        url(conversation, "branch/"),
        json={"message_id": first["ai_message"]["id"]},
        headers=bearer(token),
    )
    assert response.status_code == 200
    event = await device.until("conversation.branch_changed")
    assert event["active_leaf_id"] == first["ai_message"]["id"]
    assert event["conversation"]["active_leaf_id"] == first["ai_message"]["id"]
    await device.close()


async def test_branch_and_fork_errors(asgi, llm, token, other_token, conversation):
    llm.reply_text(["a"])
    llm.reply_text(["b"])
    sent = await send(asgi, token, conversation, "q")
    for action in ("branch/", "fork/"):
        for bad in ({}, {"message_id": "x"}, {"message_id": 0}, {"message_id": 1, "more": 2}):
            assert_error(
                await asgi.post(url(conversation, action), json=bad, headers=bearer(token)),
                400,
                "VALIDATION_ERROR",
            )
        assert_error(
            await asgi.post(
                url(conversation, action), json={"message_id": 10**9}, headers=bearer(token)
            ),
            404,
            "NOT_FOUND",
        )
        assert_error(
            await asgi.post(
                url(conversation, action),
                json={"message_id": sent["ai_message"]["id"]},
                headers=bearer(other_token),
            ),
            404,
            "NOT_FOUND",
        )
    await asgi.post(url(conversation, "regenerate/"), headers=bearer(token))
    off_branch = await asgi.post(
        url(conversation, "fork/"),
        json={"message_id": sent["ai_message"]["id"]},
        headers=bearer(token),
    )
    assert "message_id" in assert_error(off_branch, 400, "VALIDATION_ERROR")["fields"]


async def test_fork(asgi, llm, token, conversation):
    llm.reply_text(["a1"])
    llm.reply_text(["a2"])
    first = await send(asgi, token, conversation, "q1")
    await send(asgi, token, conversation, "q2")
    response = await asgi.post(
        url(conversation, "fork/"),
        json={"message_id": first["ai_message"]["id"]},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    fork = response.json()
    assert fork["id"] != conversation.pk and fork["message_count"] == 2
    assert fork["last_message"]["text"] == "a1"
    assert fork["active_leaf_id"] == fork["last_message"]["id"]
    copy = await Conversation.objects.aget(pk=fork["id"])
    assert texts(await page(asgi, token, copy)) == ["q1", "a1"]
    assert texts(await page(asgi, token, conversation)) == ["q1", "a1", "q2", "a2"]


def test_a_branched_page_is_the_same_number_of_statements_as_a_linear_one(
    api, user, plain_agent, conversation
):
    linear = services.create_conversation(user=user, agent=plain_agent)
    for index in range(40):
        for target, regenerate in ((linear, False), (conversation, False), (conversation, True)):
            content = None if regenerate else HumanMessage(f"q{index}")
            start = services.begin_turn(conversation=target, content=content, regenerate=regenerate)
            services.finish_message(
                conversation_id=target.pk,
                turn_id=start.turn_id,
                message_id=start.ai_message.pk,
                message=AIMessage(f"a{index}"),
                status="complete",
                release_lock=True,
            )

    def statements(target: Conversation, **params) -> int:
        api.get(url(target, "messages/"), params)  # the token's first use writes last_used_at
        with CaptureQueriesContext(connection) as captured:
            response = api.get(url(target, "messages/"), {"limit": 30, **params})
        assert response.status_code == 200
        assert len(response.json()["results"]) == 30
        assert any("on_path" in query["sql"] for query in captured.captured_queries)
        return len(captured)

    assert statements(conversation) == statements(linear)
    assert statements(conversation, before=10**9) == statements(linear, before=10**9)
    assert statements(conversation, after=1) == statements(linear, after=1)
