"""Tests of the fake OpenAI server, driven by the real ``langchain_openai`` / ``openai`` clients.

No Django needed: run with ``pytest -p no:django tests/test_fakeopenai.py -o asyncio_mode=auto``.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from tests.support.fakeopenai import (
    DEFAULT_REPLY,
    ErrorReply,
    FakeOpenAI,
    FakeOpenAIProcess,
    TextReply,
    ToolCall,
    ToolCallsReply,
    step_from_dict,
    step_to_dict,
)
from tests.support.fakeopenai import fake_openai as _fake_openai_fixture

# Re-export under the fixture's name so this module works before (and regardless of) the
# project conftest importing it; a plain import would trip ruff's F811 on test arguments.
fake_openai = _fake_openai_fixture

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def make_llm(fake: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    """A real ChatOpenAI client pointed at the fake server."""
    options: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "base_url": fake.base_url,
        "api_key": "test",
        "stream_usage": True,
        "max_retries": 0,
        **kwargs,
    }
    return ChatOpenAI(**options)


def usage_of(message: AIMessageChunk | Any) -> tuple[int, int, int]:
    """(input, output, total) tokens of a message's ``usage_metadata``."""
    usage = message.usage_metadata
    assert usage is not None
    return usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]


async def collect(llm: Any, prompt: Any) -> tuple[AIMessageChunk, list[AIMessageChunk]]:
    """Stream ``prompt`` and return the accumulated message plus the individual chunks."""
    acc: AIMessageChunk | None = None
    chunks: list[AIMessageChunk] = []
    async for chunk in llm.astream(prompt):
        chunks.append(chunk)
        acc = chunk if acc is None else acc + chunk
    assert acc is not None
    return acc, chunks


# --------------------------------------------------------------------------------------------
# Streaming through langchain
# --------------------------------------------------------------------------------------------


async def test_astream_text_and_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_text(["Hel", "lo", " world"], usage=(10, 3))

    acc, chunks = await collect(make_llm(fake_openai), "Say hello")

    assert acc.content == "Hello world"
    assert [c.content for c in chunks if c.content] == ["Hel", "lo", " world"]
    assert usage_of(acc) == (10, 3, 13)
    assert acc.response_metadata["finish_reason"] == "stop"
    body = fake_openai.last_request.body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_default_reply_when_queue_is_empty(fake_openai: FakeOpenAI) -> None:
    acc, chunks = await collect(make_llm(fake_openai), "one two three")

    assert acc.content == DEFAULT_REPLY
    assert len([c for c in chunks if c.content]) > 1  # split into several chunks
    # Default usage: words in the prompt, one completion token per delta.
    assert acc.usage_metadata is not None
    assert acc.usage_metadata["input_tokens"] == 3
    assert acc.usage_metadata["output_tokens"] == 3


async def test_stream_chunks_have_openai_shape(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_text(["a", "b"], usage=(1, 2))

    await collect(make_llm(fake_openai), "hi")

    chunks = fake_openai.last_request.chunks
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["model"] == "gpt-4o-mini" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:3]] == ["a", "b"]
    assert chunks[3]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert all(isinstance(c["x_sent_at"], float) for c in chunks)


async def test_tool_calls_are_reassembled(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_tool_calls(
        [
            ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}, id="call_1", fragments=4),
            ToolCall("get_weather", {"city": "Oslo"}, id="call_2", fragments=2),
        ],
        usage=(20, 6),
    )
    llm = make_llm(fake_openai).bind_tools([WEATHER_TOOL])

    acc, _ = await collect(llm, "Weather in Paris and Oslo?")

    assert acc.tool_calls == [
        {
            "name": "get_weather",
            "args": {"city": "Paris", "unit": "celsius"},
            "id": "call_1",
            "type": "tool_call",
        },
        {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_2", "type": "tool_call"},
    ]
    assert acc.response_metadata["finish_reason"] == "tool_calls"
    assert usage_of(acc) == (20, 6, 26)
    # The client sent the tool definitions.
    tools = fake_openai.last_request.body["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather"]
    # Arguments really were split: a header chunk, then index + fragment only.
    deltas = [c["choices"][0]["delta"] for c in fake_openai.last_request.chunks if c["choices"]]
    first_call = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")][:5]
    assert first_call[0]["id"] == "call_1" and first_call[0]["function"]["name"] == "get_weather"
    assert all(set(tc) == {"index", "function"} for tc in first_call[1:])
    assert all(set(tc["function"]) == {"arguments"} for tc in first_call[1:])


async def test_request_records_messages_and_parameters(fake_openai: FakeOpenAI) -> None:
    llm = make_llm(fake_openai, model="gpt-test", temperature=0.3)

    await collect(llm, [SystemMessage("Be brief."), HumanMessage("What is 2+2?")])

    assert len(fake_openai.requests) == 1
    request = fake_openai.requests[0]
    assert request.method == "POST"
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test"
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert request.body["model"] == "gpt-test"
    assert request.body["temperature"] == 0.3
    assert request.chunks[0]["model"] == "gpt-test"  # the model is echoed back


# --------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------


async def test_429_raises_rate_limit_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_error(429, retry_after=7)

    with pytest.raises(openai.RateLimitError) as exc_info:
        await collect(make_llm(fake_openai), "hi")

    assert exc_info.value.status_code == 429
    assert exc_info.value.code == "rate_limit_exceeded"
    assert exc_info.value.response.headers["retry-after"] == "7"
    assert len(fake_openai.requests) == 1  # max_retries=0: no retry


async def test_500_raises_internal_server_error(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_error(500, message="boom", code="internal")

    with pytest.raises(openai.InternalServerError) as exc_info:
        await collect(make_llm(fake_openai), "hi")

    assert exc_info.value.status_code == 500
    assert exc_info.value.message.endswith("boom")
    assert exc_info.value.body == {
        "message": "boom",
        "type": "server_error",
        "param": None,
        "code": "internal",
    }


async def test_stream_dying_halfway_raises_after_first_chunks(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_broken_stream(["one ", "two ", "three ", "four"], die_after=2)
    received: list[str] = []

    with pytest.raises(openai.APIConnectionError):
        async for chunk in make_llm(fake_openai).astream("count"):
            if chunk.content:
                received.append(str(chunk.content))

    assert received == ["one ", "two "]
    assert not any(c.get("usage") for c in fake_openai.last_request.chunks)


async def test_connection_reused_after_broken_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_broken_stream(["x", "y"], die_after=1)
    llm = make_llm(fake_openai)
    with pytest.raises(openai.APIConnectionError):
        await collect(llm, "hi")

    acc, _ = await collect(llm, "again")

    assert acc.content == DEFAULT_REPLY


async def test_initial_hang_raises_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.hang(5)
    started = time.monotonic()

    with pytest.raises(openai.APITimeoutError):
        await collect(make_llm(fake_openai, timeout=0.5), "hi")

    assert time.monotonic() - started < 3
    # Nothing at all was sent: the timeout happened before the status line.
    assert fake_openai.last_request.chunks == []


async def test_slow_stream_spaces_chunks(fake_openai: FakeOpenAI) -> None:
    delay = 0.2
    fake_openai.reply_text(["a", "b", "c", "d"], chunk_delay=delay)
    arrivals: list[float] = []

    async for chunk in make_llm(fake_openai).astream("slowly"):
        if chunk.content:
            arrivals.append(time.time())

    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert all(gap >= delay * 0.75 for gap in gaps), gaps
    sent = fake_openai.last_request.chunk_times[1:5]  # skip the role preamble
    server_gaps = [later - earlier for earlier, later in itertools.pairwise(sent)]
    assert all(gap >= delay * 0.9 for gap in server_gaps), server_gaps


async def test_x_sent_at_lets_clients_measure_latency(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_text(["a", "b"], chunk_delay=0.05)
    client = openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=0)

    latencies = []
    async with client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for chunk in stream:
            assert chunk.model_extra is not None
            latencies.append(time.time() - chunk.model_extra["x_sent_at"])

    assert len(latencies) == 4  # preamble, "a", "b", finish
    assert all(0 <= latency < 1 for latency in latencies), latencies


async def test_keep_alive_connection_is_reused(fake_openai: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=0)
    fake_openai.reply_text(["1"])
    fake_openai.reply_error(429)
    fake_openai.reply_text(["3"])

    async with client:
        for _ in range(3):
            try:
                stream = await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                async for _chunk in stream:
                    pass
            except openai.RateLimitError:
                pass
        completion = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )

    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert len({r.connection_id for r in fake_openai.requests}) == 1


# --------------------------------------------------------------------------------------------
# Sync client
# --------------------------------------------------------------------------------------------


def test_sync_invoke(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_text(["Bon", "jour"], usage=(4, 2))

    message = make_llm(fake_openai).invoke("Say hello in French")

    assert message.content == "Bonjour"
    assert message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 6
    assert not fake_openai.last_request.body.get("stream")


def test_sync_invoke_tool_calls(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_tool_calls([ToolCall("get_weather", {"city": "Rome"}, id="call_9")])

    message = make_llm(fake_openai).bind_tools([WEATHER_TOOL]).invoke("Weather in Rome?")

    assert message.tool_calls == [
        {"name": "get_weather", "args": {"city": "Rome"}, "id": "call_9", "type": "tool_call"}
    ]


def test_sync_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_text(["x", "y", "z"], usage=(1, 3))

    acc = None
    for chunk in make_llm(fake_openai).stream("hi"):
        acc = chunk if acc is None else acc + chunk

    assert acc is not None
    assert acc.content == "xyz"
    assert usage_of(acc) == (1, 3, 4)


def test_sync_broken_non_streaming_response(fake_openai: FakeOpenAI) -> None:
    fake_openai.reply_text(["never", " complete"], die_after=0)

    with pytest.raises(openai.APIConnectionError):
        make_llm(fake_openai).invoke("hi")


# --------------------------------------------------------------------------------------------
# Server mechanics
# --------------------------------------------------------------------------------------------


def test_start_stop_and_base_url() -> None:
    fake = FakeOpenAI()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    fake.start()
    try:
        assert fake.running
        assert fake.base_url == f"http://127.0.0.1:{fake.port}/v1"
        assert fake.port != 0
    finally:
        fake.stop()
    assert not fake.running
    fake.stop()  # idempotent


def test_stop_does_not_wait_for_hanging_replies() -> None:
    fake = FakeOpenAI().start()
    fake.hang(60)
    sock = socket.create_connection(("127.0.0.1", fake.port))
    body = b'{"model": "m", "messages": [], "stream": true}'
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    fake.wait_for_requests(1)

    started = time.monotonic()
    fake.stop()

    assert time.monotonic() - started < 2
    sock.settimeout(2)
    assert sock.recv(1024) == b""  # connection closed without a response
    sock.close()


def test_requests_from_other_threads_are_waitable(fake_openai: FakeOpenAI) -> None:
    def worker() -> None:
        make_llm(fake_openai).invoke("from a thread")

    thread = threading.Thread(target=worker)
    thread.start()
    requests = fake_openai.wait_for_requests(1, timeout=10)
    thread.join()

    assert requests[0].messages == [{"role": "user", "content": "from a thread"}]
    with pytest.raises(TimeoutError):
        fake_openai.wait_for_requests(2, timeout=0.1)


def test_enqueue_accepts_dicts_and_reset(fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue({"type": "text", "deltas": ["from ", "dict"]}, TextReply(["second"]))
    assert fake_openai.pending == 2

    assert make_llm(fake_openai).invoke("hi").content == "from dict"
    fake_openai.reset()

    assert fake_openai.pending == 0
    assert fake_openai.requests == []
    assert make_llm(fake_openai).invoke("hi").content == DEFAULT_REPLY


def test_unknown_path_is_404(fake_openai: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test", max_retries=0)
    with client, pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="m", input="hi")
    assert fake_openai.last_request.path == "/v1/embeddings"


@pytest.mark.parametrize(
    "step",
    [
        TextReply(["a", "b"], usage=(1, 2), chunk_delay=0.1, die_after=1),
        ToolCallsReply([ToolCall("f", {"x": 1}, id="call_1", fragments=2)], content=["hm"]),
        ErrorReply(429, retry_after=1.5, code="rate_limit_exceeded"),
    ],
)
def test_step_dict_round_trip(step: Any) -> None:
    assert step_from_dict(step_to_dict(step)) == step


def test_step_from_dict_hang_and_errors() -> None:
    assert step_from_dict({"type": "hang", "seconds": 2}).initial_delay == 2
    hung = step_from_dict({"type": "hang", "seconds": 1, "then": {"type": "error"}})
    assert hung == ErrorReply(initial_delay=1)
    with pytest.raises(ValueError):
        step_from_dict({"type": "nope"})
    with pytest.raises(ValueError):
        step_from_dict({"type": "text", "deltas": [], "colour": "red"})


# --------------------------------------------------------------------------------------------
# Separate process (python -m tests.support.fakeopenai)
# --------------------------------------------------------------------------------------------


def test_separate_process_with_script_and_control_endpoints() -> None:
    script = [TextReply(["From ", "the ", "process"], usage=(5, 3))]
    with FakeOpenAIProcess(script=script) as server:
        llm = ChatOpenAI(
            model="gpt-4o-mini",
            base_url=server.base_url,
            api_key="test",
            stream_usage=True,
            max_retries=0,
        )
        acc = None
        for chunk in llm.stream("hi"):
            acc = chunk if acc is None else acc + chunk
        assert acc is not None
        assert acc.content == "From the process"
        assert usage_of(acc) == (5, 3, 8)

        server.enqueue(ErrorReply(429, retry_after=2))
        with pytest.raises(openai.RateLimitError):
            llm.invoke("again")
        assert llm.invoke("default").content == DEFAULT_REPLY

        recorded = server.requests()
        assert [r["messages"] for r in (req["body"] for req in recorded)] == [
            [{"role": "user", "content": "hi"}],
            [{"role": "user", "content": "again"}],
            [{"role": "user", "content": "default"}],
        ]
        assert recorded[1]["step"]["type"] == "error"
        server.reset()
        assert server.requests() == []
