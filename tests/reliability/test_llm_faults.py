"""The model provider misbehaves while a live server runs a turn.

For each fault (429, 500, a hang past the timeout, a stream cut mid-reply) a
real uvicorn process runs one turn per surface: REST (JSON), the chat
websocket, and GraphQL (sendMessage over HTTP, followed on a subscription).
Every time: the human message is stored, the AI message ends `failed` with a
stable code (and the text streamed before a cut), nothing stored earlier
changes, the turn lock is released, and the next turn on the same
conversation works without restarting anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.live_clients import (
    ai_final,
    arows,
    auth,
    chat_socket,
    frames_until,
    graphql_events_until_final,
    graphql_socket,
    subscribe_events,
    wait_idle,
)

pytestmark = pytest.mark.django_db(transaction=True)

SEND = """
mutation Send($id: ID!, $content: String!) {
  sendMessage(conversationId: $id, content: $content) {
    humanMessage { id } aiMessage { id status } errors { code }
  }
}
"""

CUT_DELTAS = ["par", "tial ", "text ", "never ", "sent"]


def rate_limited(llm: Any) -> None:
    llm.reply_error(429, retry_after=1)


def server_error(llm: Any) -> None:
    llm.reply_error(500)


# The live server of the hang case gives up sooner than the tests' 5 s.
HANG_TIMEOUTS = {"CONFAB_LLM_TIMEOUT": "2", "CONFAB_LLM_IDLE_TIMEOUT": "2"}


def hang(llm: Any) -> None:
    # Past the live server's CONFAB_LLM_TIMEOUT / CONFAB_LLM_IDLE_TIMEOUT (HANG_TIMEOUTS).
    llm.hang(5)


def cut_stream(llm: Any) -> None:
    llm.reply_broken_stream(CUT_DELTAS, die_after=2)


# fault -> (script it, expected error code, text kept in the failed reply)
FAULTS: dict[str, tuple[Callable[[Any], None], str, str]] = {
    "429": (rate_limited, "provider_rate_limited", ""),
    "500": (server_error, "provider_error", ""),
    "hang": (hang, "provider_timeout", ""),
    "cut": (cut_stream, "provider_stream_interrupted", "partial "),
}


async def turn_over_rest(server: Any, conversation_id: int, token: str, content: str) -> dict:
    async with httpx.AsyncClient(base_url=server.url, headers=auth(token), timeout=40) as client:
        response = await client.post(
            f"/api/v1/conversations/{conversation_id}/messages/", json={"content": content}
        )
    assert response.status_code == 201, response.text
    return response.json()["ai_message"]


async def turn_over_websocket(server: Any, conversation_id: int, token: str, content: str) -> dict:
    socket, _ = await chat_socket(server, conversation_id, token)
    try:
        await socket.send(json.dumps({"type": "message", "content": content}))
        frames = await frames_until(socket, ai_final, timeout=40)
    finally:
        await socket.close()
    errors = [frame for frame in frames if frame["type"] == "error"]
    assert not errors, errors
    final = frames[-1]
    reply = dict(final["message"])
    if final["type"] == "message.failed":
        assert final["error"] == reply["error"]
    return reply


async def turn_over_graphql(server: Any, conversation_id: int, token: str, content: str) -> dict:
    socket = await graphql_socket(server, token)
    try:
        await subscribe_events(socket, conversation_id)
        async with httpx.AsyncClient(base_url=server.url, headers=auth(token), timeout=40) as c:
            response = await c.post(
                "/graphql/",
                json={"query": SEND, "variables": {"id": str(conversation_id), "content": content}},
            )
        payload = response.json()["data"]["sendMessage"]
        assert payload["errors"] == [] and payload["aiMessage"]["status"] == "STREAMING"
        events = await graphql_events_until_final(socket, timeout=40)
    finally:
        await socket.close()
    final = events[-1]
    reply = {"id": int(final["message"]["id"]), "text": final["message"]["text"]}
    reply["status"] = final["message"]["status"].lower()
    if final["__typename"] == "MessageFailed":
        reply["error"] = {"code": final["error"]["code"]}
    return reply


SURFACES = {"rest": turn_over_rest, "websocket": turn_over_websocket, "graphql": turn_over_graphql}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_provider_fault_fails_the_reply_and_the_next_turn_works(
    live_server_factory, llm, conversation, token, fault
):
    server = live_server_factory(extra_env=HANG_TIMEOUTS if fault == "hang" else None)
    script, code, kept_text = FAULTS[fault]
    stored: list[dict[str, Any]] = []

    for surface, run_turn in SURFACES.items():
        content = f"{surface} asks during {fault}"
        script(llm)
        reply = await run_turn(server, conversation.pk, token, content)
        # What the client was told matches what is stored.
        assert reply["status"] == "failed", (surface, reply)
        assert reply["error"]["code"] == code, (surface, reply)
        assert reply["text"] == kept_text, (surface, reply)
        await wait_idle(conversation.pk)
        rows = await arows(conversation.pk)
        # Everything stored before is unchanged; exactly two new rows.
        assert rows[: len(stored)] == stored, surface
        human, ai = rows[len(stored) :]
        assert (human["role"], human["status"], human["text"]) == ("human", "complete", content)
        assert (ai["id"], ai["role"], ai["status"]) == (reply["id"], "ai", "failed")
        assert ai["error"]["code"] == code and ai["text"] == kept_text
        # The error is a fixed sentence: no URL, exception text or prompt.
        assert "http" not in ai["error"]["message"] and "127.0.0.1" not in ai["error"]["message"]
        assert ai["content"]["_type"] == "AIMessage"
        stored = rows

    # The same conversation and server answer the next turn normally, on every surface.
    for surface, run_turn in SURFACES.items():
        llm.reply_text(["all ", "good ", surface])
        reply = await run_turn(server, conversation.pk, token, f"{surface} again")
        assert (reply["status"], reply["text"]) == ("complete", f"all good {surface}"), surface
        await wait_idle(conversation.pk)
    rows = await arows(conversation.pk)
    assert rows[: len(stored)] == stored
    assert [row["status"] for row in rows[len(stored) :]] == ["complete"] * 6
