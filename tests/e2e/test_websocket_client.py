"""A plain `websockets` client on the chat socket of a live Confab server.

Speaks the consumer's frames (conversations/consumers.py, docs/architecture.md) over
`/ws/conversations/<id>/` on a real uvicorn process: `ready`, `ping`/`pong`, a
`message` streamed back as `message.created` (human, then the AI placeholder),
`message.delta`… and `message.completed`; `cancel` of a slow reply; `resume
{after_id}` after reconnecting (a missed turn, and a reply still streaming, rebuilt by
delta offsets); error frames; close codes 4401/4404.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from conversations.models import ConversationMessage
from tests.support.servers import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

Frame = dict[str, Any]


@pytest.fixture
def server(live_server_factory, plain_agent) -> LiveServer:
    return live_server_factory(extra_env={"CONFAB_REDIS_PREFIX": f"ws-{uuid.uuid4().hex}"})


def chat_url(server: LiveServer, conversation_id: int) -> str:
    return f"{server.ws_url}/ws/conversations/{conversation_id}/"


def open_chat(server: LiveServer, conversation_id: int, token: str) -> Any:
    return connect(
        chat_url(server, conversation_id),
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
    )


async def send(ws: ClientConnection, frame: Frame) -> None:
    await ws.send(json.dumps(frame))


async def receive(ws: ClientConnection, timeout: float = 10) -> Frame:
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


async def receive_until(
    ws: ClientConnection, done: Callable[[Frame], bool], timeout: float = 20
) -> list[Frame]:
    """Frames up to and including the first one for which `done` is true."""
    frames: list[Frame] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if done(frame):
                return frames


def ends(message_id: int) -> Callable[[Frame], bool]:
    """The frame that ends a message: completed (also when cancelled) or failed."""
    return lambda frame: (
        frame["type"] in ("message.completed", "message.failed")
        and frame["message"]["id"] == message_id
    )


def ai_created(frame: Frame) -> bool:
    return frame["type"] == "message.created" and frame["message"]["role"] == "ai"


class Transcript:
    """What a client keeps: each message's text, merged from snapshots and deltas by offset."""

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}
        self.streaming: set[int] = set()

    def apply(self, frame: Frame) -> bool:
        """Take in a frame; False for a delta past the end of the text held (a gap: skipped,
        a snapshot or the final message brings the text)."""
        if frame["type"].startswith("message.") and "message" in frame:
            # A snapshot or a final message: its text is authoritative.
            message = frame["message"]
            self.texts[message["id"]] = message["text"]
            if message["status"] == "streaming":
                self.streaming.add(message["id"])
            else:
                self.streaming.discard(message["id"])
        elif frame["type"] == "message.delta":
            known = self.texts.get(frame["message_id"])
            if known is None:
                # Sent before this client's snapshot of the message, which includes it.
                return True
            start, delta = frame["offset"], frame["delta"]
            if start > len(known):
                return False
            if start + len(delta) > len(known):
                self.texts[frame["message_id"]] = known + delta[len(known) - start :]
        return True

    def resume_after(self) -> int:
        """The `after_id` to resume from: the last message before any still streaming here
        (its text may have moved on while we were away), else the last one held."""
        if self.streaming:
            return min(self.streaming) - 1
        return max(self.texts, default=0)


async def test_message_streams_back_as_created_deltas_completed(server, token, conversation, llm):
    llm.reply_text(["Hel", "lo", " the", "re", "!"], usage=(6, 5), chunk_delay=0.02)
    async with open_chat(server, conversation.pk, token) as ws:
        ready = await receive(ws)
        assert ready["type"] == "ready"
        assert ready["conversation"]["id"] == conversation.pk
        assert (ready["last_message_id"], ready["active_turn"]) == (None, None)

        await send(ws, {"type": "ping"})
        assert await receive(ws) == {"type": "pong"}

        await send(ws, {"type": "message", "content": "Hi", "client_message_id": "ws-1"})
        head = await receive_until(ws, ai_created)
        ai_id = head[-1]["message"]["id"]
        frames = head + await receive_until(ws, ends(ai_id))

        messages = [frame for frame in frames if frame["type"].startswith("message.")]
        created = [frame["message"] for frame in messages if frame["type"] == "message.created"]
        assert [(m["role"], m["status"]) for m in created] == [
            ("human", "complete"),
            ("ai", "streaming"),
        ]
        human = created[0]
        assert (human["text"], human["client_message_id"]) == ("Hi", "ws-1")
        deltas = [frame for frame in messages if frame["type"] == "message.delta"]
        assert deltas and {frame["message_id"] for frame in deltas} == {ai_id}
        assert [frame["index"] for frame in deltas] == list(range(len(deltas)))
        assert [frame["type"] for frame in messages] == (
            ["message.created"] * 2 + ["message.delta"] * len(deltas) + ["message.completed"]
        )
        completed = messages[-1]["message"]
        assert completed["status"] == "complete"
        assert completed["usage"] == {"input_tokens": 6, "output_tokens": 5, "total_tokens": 11}
        streamed = "".join(frame["delta"] for frame in deltas)
        stored = await ConversationMessage.objects.aget(pk=ai_id)
        assert streamed == completed["text"] == stored.text == "Hello there!"

        # The same client_message_id again: the stored turn, no second one.
        await send(ws, {"type": "message", "content": "Hi", "client_message_id": "ws-1"})
        repeat = await receive_until(ws, ends(ai_id))
        repeated = [frame for frame in repeat if frame["type"] == "message.completed"]
        assert [frame["message"]["id"] for frame in repeated] == [human["id"], ai_id]
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 2


async def test_cancel_ends_a_slow_reply_cancelled(server, token, conversation, llm):
    llm.reply_text([f"word{number} " for number in range(60)], chunk_delay=0.1)
    async with open_chat(server, conversation.pk, token) as ws:
        assert (await receive(ws))["type"] == "ready"

        await send(ws, {"type": "cancel"})
        idle = await receive(ws)
        assert (idle["type"], idle["code"]) == ("error", "NO_ACTIVE_TURN")

        await send(ws, {"type": "message", "content": "Tell me a long story"})
        head = await receive_until(ws, lambda frame: frame["type"] == "message.delta")
        ai_id = head[-1]["message_id"]
        await send(ws, {"type": "cancel"})
        frames = head + await receive_until(ws, ends(ai_id))

    final = frames[-1]
    assert final["type"] == "message.completed"
    assert final["message"]["status"] == "cancelled"
    transcript = Transcript()
    assert all(transcript.apply(frame) for frame in frames[:-1])
    # What streamed is the start of the kept text (the last bit may not have been sent).
    assert final["message"]["text"].startswith(transcript.texts[ai_id])
    assert final["message"]["text"].startswith("word0 ")
    assert len(final["message"]["text"]) < len("".join(f"word{n} " for n in range(60)))
    stored = await ConversationMessage.objects.aget(pk=ai_id)
    assert (stored.status, stored.text) == ("cancelled", final["message"]["text"])


async def test_resume_after_reconnecting_replays_what_was_missed(server, token, conversation, llm):
    transcript = Transcript()
    llm.reply_text(["First", " reply"])
    async with open_chat(server, conversation.pk, token) as ws:
        assert (await receive(ws))["type"] == "ready"
        await send(ws, {"type": "message", "content": "One"})
        head = await receive_until(ws, ai_created)
        frames = head + await receive_until(ws, ends(head[-1]["message"]["id"]))
    assert all(transcript.apply(frame) for frame in frames)
    last_seen = transcript.resume_after()

    # Offline: a turn happens on another surface (REST).
    llm.reply_text(["Missed", " reply"])
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        response = await http.post(
            f"/api/v1/conversations/{conversation.pk}/messages/",
            json={"content": "Two"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    missed = response.json()

    # And a slow reply starts on the socket, which drops mid-stream.
    slow = [f"part{number} " for number in range(25)]
    llm.reply_text(slow, chunk_delay=0.08)
    async with open_chat(server, conversation.pk, token) as ws:
        ready = await receive(ws)
        assert ready["last_message_id"] == missed["ai_message"]["id"]
        await send(ws, {"type": "resume", "after_id": last_seen})
        replay = await receive_until(
            ws, lambda frame: frame.get("message", {}).get("id") == missed["ai_message"]["id"]
        )
        await send(ws, {"type": "message", "content": "Three"})
        head = await receive_until(ws, lambda frame: frame["type"] == "message.delta")
        slow_id = head[-1]["message_id"]
    assert all(transcript.apply(frame) for frame in replay + head)

    assert [(frame["type"], frame["message"]["id"]) for frame in replay] == [
        ("message.completed", missed["human_message"]["id"]),
        ("message.completed", missed["ai_message"]["id"]),
    ]
    assert transcript.texts[missed["ai_message"]["id"]] == "Missed reply"

    # Back online while the slow reply still streams: resume, then live deltas.
    await asyncio.sleep(0.4)
    async with open_chat(server, conversation.pk, token) as ws:
        ready = await receive(ws)
        assert ready["active_turn"] is not None
        # Resume from before the reply we hold half of: it comes again as a snapshot.
        assert transcript.resume_after() == slow_id - 1
        await send(ws, {"type": "resume", "after_id": transcript.resume_after()})
        frames = await receive_until(ws, ends(slow_id))
        snapshot = next(
            frame
            for frame in frames
            if frame["type"] == "message.created" and frame["message"]["id"] == slow_id
        )
        assert snapshot["message"]["status"] == "streaming"
        at = frames.index(snapshot)
        # Live deltas may overtake the snapshot (the socket joined the stream at connect):
        # those past our stale text are gaps. After the snapshot there are none, and the
        # text built from snapshot + deltas is the whole reply before the final frame.
        for frame in frames[:at]:
            transcript.apply(frame)
        assert all(transcript.apply(frame) for frame in frames[at:-1])
        assert transcript.texts[slow_id] == "".join(slow)
        transcript.apply(frames[-1])
        # The turn's end also updates the conversation; pong comes after that.
        await send(ws, {"type": "ping"})
        after = await receive_until(ws, lambda frame: frame["type"] == "pong")
        assert {frame["type"] for frame in after} <= {"conversation.updated", "pong"}

    final = frames[-1]["message"]
    assert final["status"] == "complete" and final["text"] == "".join(slow)
    assert any(frame["type"] == "message.delta" for frame in frames[at:])
    stored = [
        message.text
        async for message in ConversationMessage.objects.filter(conversation=conversation).order_by(
            "id"
        )
    ]
    assert stored == ["One", "First reply", "Two", "Missed reply", "Three", "".join(slow)]
    assert [transcript.texts[message_id] for message_id in sorted(transcript.texts)] == stored


async def test_bad_frames_are_error_frames_and_the_socket_stays_open(server, token, conversation):
    async with open_chat(server, conversation.pk, token) as ws:
        assert (await receive(ws))["type"] == "ready"
        await ws.send("{not json")
        assert (await receive(ws))["code"] == "INVALID_JSON"
        await send(ws, {"type": "shout"})
        assert (await receive(ws))["code"] == "UNKNOWN_TYPE"
        await send(ws, {"type": "resume", "after_id": "yesterday"})
        assert (await receive(ws))["code"] == "INVALID_FRAME"
        await send(ws, {"type": "message", "content": ""})
        blank = await receive(ws)
        assert (blank["type"], blank["code"]) == ("error", "VALIDATION_ERROR")
        await send(ws, {"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


async def test_close_codes_without_a_token_and_for_someone_elses_conversation(
    server, conversation, other_token
):
    anonymous = connect(chat_url(server, conversation.pk), compression=None)
    stranger = connect(f"{chat_url(server, conversation.pk)}?token={other_token}", compression=None)
    for opening, code in ((anonymous, 4401), (stranger, 4404)):
        async with opening as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
