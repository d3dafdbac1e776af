"""A client drops its websocket mid-turn and resumes on another server process.

Two uvicorn processes share PostgreSQL and Redis. The turn runs on A; the
client hops between processes while the reply streams, each time sending
`resume {after_id}` on the new socket. The text it assembles from the resumed
snapshot and the later deltas (placed by `offset`) has no gap and ends equal
to the stored reply.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.support.live_clients import (
    ai_final,
    arows,
    assemble,
    chat_socket,
    frames_until,
    recv_json,
    wait_idle,
)
from tests.support.requirements import needs_redis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_redis("resuming on another process"),
]

WORDS = [f"w{i:03d} " for i in range(120)]


async def drop(socket) -> None:
    """Disconnect without a closing handshake (a phone losing its network)."""
    socket.transport.abort()
    await asyncio.sleep(0)


async def test_resume_on_another_process_has_no_gap(live_server_factory, llm, conversation, token):
    a = live_server_factory()
    b = live_server_factory()
    # ~6 s of reply, deltas far more often than partial saves (0.2 s in tests).
    llm.reply_text(WORDS, chunk_delay=0.05)

    socket, _ = await chat_socket(a, conversation.pk, token)
    await socket.send(json.dumps({"type": "message", "content": "tell me a long story"}))
    frames = await frames_until(
        socket, lambda f: f["type"] == "message.created" and f["message"]["role"] == "ai"
    )
    human_id = frames[0]["message"]["id"]
    ai_id = frames[-1]["message"]["id"]
    frames = await frames_until(socket, lambda f: f["type"] == "message.delta")
    text = assemble("", [(f["offset"], f["delta"]) for f in frames if f["type"] == "message.delta"])
    await drop(socket)

    hops = 0
    final = None
    while final is None:
        await asyncio.sleep(0.15)  # offline for a moment; the turn streams on
        server = (b, a)[hops % 2]
        hops += 1
        socket, ready = await chat_socket(server, conversation.pk, token)
        assert ready["active_turn"] is not None or ready["last_message_id"] == ai_id
        await socket.send(json.dumps({"type": "resume", "after_id": human_id}))
        resumed = False
        # Listen for a while (to the end after a few hops), then drop again.
        listen_until = time.monotonic() + (0.5 if hops < 6 else 20)
        try:
            while final is None:
                timeout = max(0.01, listen_until - time.monotonic())
                frame = await recv_json(socket, timeout=timeout if resumed else 20)
                if frame["type"] == "message.delta":
                    assert frame["message_id"] == ai_id
                    if resumed or frame["offset"] <= len(text):
                        # After the snapshot every delta must join up; before it, the
                        # client places what it can and drops the rest.
                        text = assemble(text, [(frame["offset"], frame["delta"])])
                elif frame["type"].startswith("message."):
                    assert frame["message"]["id"] == ai_id, frame
                    shown = frame["message"]["text"]
                    # The snapshot never contradicts what the client already had.
                    assert shown.startswith(text) or text.startswith(shown), (text, shown)
                    text = text if len(text) > len(shown) else shown
                    resumed = True
                    if ai_final(frame):
                        final = frame
        except TimeoutError:
            assert resumed, "no snapshot after resume"
        await drop(socket)

    assert hops >= 3, "the reply ended before the client hopped between processes"
    assert final["message"]["status"] == "complete"
    assert text == final["message"]["text"] == "".join(WORDS)
    await wait_idle(conversation.pk)
    rows = await arows(conversation.pk)
    assert [(r["role"], r["status"]) for r in rows] == [("human", "complete"), ("ai", "complete")]
    assert rows[1]["text"] == text
