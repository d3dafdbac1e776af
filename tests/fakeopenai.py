"""A scriptable, OpenAI-compatible chat-completions server for tests.

The server is a tiny HTTP/1.1 implementation on top of ``asyncio.start_server`` (standard library
only). It runs its own event loop in a background thread, so it can be used from sync tests, from
async tests (whatever loop pytest-asyncio gives them) and by other processes (e.g. a Django server
started by an end-to-end test) through ``base_url``.

Quick start::

    with FakeOpenAI() as fake:
        fake.reply_text(["Hel", "lo"], usage=(10, 2))
        llm = ChatOpenAI(base_url=fake.base_url, api_key="test", model="gpt-4o-mini")
        assert llm.invoke("hi").content == "Hello"
        assert fake.requests[0].body["messages"][0]["content"] == "hi"

In pytest, use the ``fake_openai`` fixture from ``tests.fakeopenai_fixture``.

Endpoints
---------
``POST /v1/chat/completions`` (and ``POST /chat/completions``)
    Consumes the next queued script step (or ``FakeOpenAI.default_step`` when the queue is
    empty). With ``"stream": true`` the reply is a ``text/event-stream`` of
    ``data: {chat.completion.chunk}`` events ending with ``data: [DONE]``, sent with chunked
    transfer encoding on a keep-alive connection. With ``stream_options.include_usage`` a final
    chunk with ``"choices": []`` and ``usage`` is sent before ``[DONE]``. Without streaming the
    reply is a regular ``chat.completion`` JSON object.
``GET /v1/models``
    A one-entry model list (some clients probe it).
Control endpoints (not recorded in ``requests``, meant for a server in another process):
    ``GET /_fake/health`` -> ``{"ok": true}``;
    ``POST /_fake/script`` with a step dict or a list of step dicts -> queues them;
    ``GET /_fake/requests`` -> recorded requests as JSON (see ``RecordedRequest.to_dict``);
    ``POST /_fake/reset`` -> clears the queue and the recorded requests.

Script steps
------------
Steps are dataclasses; each also has a JSON form (``step_to_dict`` / ``step_from_dict``) with a
``"type"`` key, used by the control endpoint and the ``--script`` CLI option.

``TextReply(deltas, usage=None, chunk_delay=0.0, initial_delay=0.0, die_after=None,
finish_reason="stop", model=None)`` -- JSON ``{"type": "text", "deltas": [...], ...}``
    Streams one chunk per text delta. The first chunk is, as with the real API, a "preamble"
    carrying ``{"role": "assistant", "content": "", "refusal": null}``.
``ToolCallsReply(calls, content=(), usage=None, chunk_delay=0.0, initial_delay=0.0,
die_after=None, model=None)`` -- JSON ``{"type": "tool_calls", "calls": [...], ...}``
    ``calls`` are ``ToolCall(name, arguments={}, id=None, fragments=3)`` (JSON: dicts with the
    same keys). For every call, one header chunk carries ``index``, ``id``, ``type: "function"``,
    ``function.name`` and empty ``arguments``; then the JSON-encoded arguments are split into
    ``fragments`` chunks carrying only ``index`` and ``function.arguments``. Optional ``content``
    text deltas are streamed before the tool calls. ``finish_reason`` is ``"tool_calls"``.
``ErrorReply(status=500, message=None, error_type=None, code=None, retry_after=None,
initial_delay=0.0)`` -- JSON ``{"type": "error", "status": 429, ...}``
    An HTTP error with an OpenAI-style body ``{"error": {"message", "type", "param", "code"}}``
    and, when ``retry_after`` is set, a ``retry-after`` header. Defaults depend on the status
    (429 -> ``rate_limit_exceeded``, 5xx -> ``server_error``).
Hang -- JSON ``{"type": "hang", "seconds": 5, "then": <step or omitted>}``
    Not a class: ``FakeOpenAI.hang(seconds, then=None)`` and the JSON form return ``then``
    (default: the default reply) with ``initial_delay`` set to ``seconds``.

Common options of the stream steps:

* ``usage=(prompt_tokens, completion_tokens)``; when omitted, prompt tokens are the number of
  whitespace-separated words in the request's messages and completion tokens the number of text
  deltas plus argument fragments (both at least 1).
* ``initial_delay``: seconds to wait before sending anything, not even the status line (a hung
  upstream; use with a short client ``timeout``).
* ``chunk_delay``: seconds to wait before each chunk after the preamble (a slow stream).
* ``die_after=N``: send the preamble and at most ``N`` of the following delta chunks (text
  deltas, tool-call headers, argument fragments), then close the TCP connection without the
  finish chunk, ``[DONE]`` or the terminating HTTP chunk: the client sees an incomplete body
  (``openai.APIConnectionError``). For a non-streaming request, half of the JSON body is sent.

Every streamed chunk carries an extra top-level field ``"x_sent_at"`` (``time.time()`` just
before it was written) so a client can measure relay latency; the OpenAI client keeps unknown
fields in ``chunk.model_extra``. The sent chunks are also kept in ``RecordedRequest.chunks``.

Command line
------------
``python -m tests.fakeopenai [--host 127.0.0.1] [--port 0] [--script JSON | --script @file.json]``
prints ``FAKE_OPENAI_READY http://HOST:PORT/v1`` on stdout once it accepts connections, then
serves until SIGINT/SIGTERM. ``FakeOpenAIProcess`` wraps this for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Self

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_REPLY",
    "ErrorReply",
    "FakeOpenAI",
    "FakeOpenAIProcess",
    "RecordedRequest",
    "Step",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "step_from_dict",
    "step_to_dict",
]

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_REPLY = "Hello from the fake server."
_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})
# How often sleeping handlers check whether the client hung up: small enough for stop() and
# client timeouts to be prompt, large enough not to matter for CPU.
_POLL_INTERVAL = 0.02


# --------------------------------------------------------------------------------------------
# Script steps
# --------------------------------------------------------------------------------------------


@dataclass
class TextReply:
    """Reply with assistant text, streamed as one chunk per element of ``deltas``."""

    deltas: Sequence[str]
    usage: tuple[int, int] | None = None
    chunk_delay: float = 0.0
    initial_delay: float = 0.0
    die_after: int | None = None
    finish_reason: str = "stop"
    model: str | None = None


@dataclass
class ToolCall:
    """One function tool call of a ``ToolCallsReply``.

    ``arguments`` is a mapping (JSON-encoded by the server) or an already encoded string; it is
    streamed in ``fragments`` pieces. ``id`` defaults to a random ``call_...`` id.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    fragments: int = 3


@dataclass
class ToolCallsReply:
    """Reply with one or more tool calls (``finish_reason: "tool_calls"``)."""

    calls: Sequence[ToolCall]
    content: Sequence[str] = ()
    usage: tuple[int, int] | None = None
    chunk_delay: float = 0.0
    initial_delay: float = 0.0
    die_after: int | None = None
    model: str | None = None


@dataclass
class ErrorReply:
    """Reply with an HTTP error status and an OpenAI-style error body."""

    status: int = 500
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    initial_delay: float = 0.0


Step = TextReply | ToolCallsReply | ErrorReply

_STEP_TYPES: dict[str, type[Step]] = {
    "text": TextReply,
    "tool_calls": ToolCallsReply,
    "error": ErrorReply,
}


def default_reply() -> TextReply:
    """Return the reply used when no step is queued: ``DEFAULT_REPLY`` in three chunks."""
    return TextReply(["Hello", " from the fake", " server."])


def step_to_dict(step: Step) -> dict[str, Any]:
    """Serialize a step to its JSON-compatible form (with a ``"type"`` key)."""
    type_name = next(name for name, cls in _STEP_TYPES.items() if isinstance(step, cls))
    return {"type": type_name, **dataclasses.asdict(step)}


def step_from_dict(data: Mapping[str, Any]) -> Step:
    """Build a step from its JSON form; raises ``ValueError`` on unknown types or keys."""
    fields = dict(data)
    type_name = fields.pop("type", None)
    if type_name == "hang":
        then = fields.pop("then", None)
        seconds = float(fields.pop("seconds"))
        if fields:
            raise ValueError(f"unknown keys for a hang step: {sorted(fields)}")
        base = step_from_dict(then) if then is not None else default_reply()
        return dataclasses.replace(base, initial_delay=seconds)
    cls = _STEP_TYPES.get(str(type_name))
    if cls is None:
        raise ValueError(f"unknown step type {type_name!r}; expected one of {sorted(_STEP_TYPES)}")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown keys for a {type_name!r} step: {sorted(unknown)}")
    if fields.get("usage") is not None:
        prompt_tokens, completion_tokens = fields["usage"]
        fields["usage"] = (int(prompt_tokens), int(completion_tokens))
    if cls is ToolCallsReply:
        fields["calls"] = [_as_tool_call(call) for call in fields.get("calls", ())]
    return cls(**fields)


def _as_tool_call(call: ToolCall | Mapping[str, Any]) -> ToolCall:
    return call if isinstance(call, ToolCall) else ToolCall(**call)


def _as_step(step: Step | Mapping[str, Any]) -> Step:
    return step_from_dict(step) if isinstance(step, Mapping) else step


# --------------------------------------------------------------------------------------------
# Recorded requests
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """A request received by the server, recorded before the reply is sent.

    ``headers`` has lower-cased names. ``body`` is the parsed JSON body (``None`` if empty or
    not JSON). ``connection_id`` identifies the TCP connection (equal ids mean keep-alive reuse).
    ``chunks`` holds every streamed chunk as sent, each with its ``x_sent_at`` timestamp.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float
    connection_id: int
    step: Step | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of a chat-completions body (empty list if absent)."""
        if isinstance(self.body, dict):
            return list(self.body.get("messages") or [])
        return []

    @property
    def chunk_times(self) -> list[float]:
        """``time.time()`` at which each streamed chunk was written."""
        return [chunk["x_sent_at"] for chunk in self.chunks]

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form, as returned by ``GET /_fake/requests``."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "received_at": self.received_at,
            "connection_id": self.connection_id,
            "step": step_to_dict(self.step) if self.step is not None else None,
            "chunks": self.chunks,
        }


# --------------------------------------------------------------------------------------------
# Minimal HTTP/1.1 plumbing
# --------------------------------------------------------------------------------------------


class _BadRequest(Exception):
    """The bytes received are not an HTTP/1.1 request we understand."""


@dataclass
class _HTTPRequest:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _HTTPRequest | None:
    """Read one request; ``None`` when the client closed the connection between requests."""
    line = await reader.readline()
    # RFC 9112 section 2.2: ignore empty lines received before a request line.
    while line in (b"\r\n", b"\n"):
        line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"malformed request line: {line!r}")
    method, target, version = parts

    headers: dict[str, str] = {}
    while True:
        header_line = await reader.readline()
        if not header_line:
            raise asyncio.IncompleteReadError(header_line, None)
        if header_line in (b"\r\n", b"\n"):
            break
        name, sep, value = header_line.decode("latin-1").partition(":")
        if not sep:
            raise _BadRequest(f"malformed header line: {header_line!r}")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()

    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()

    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked_body(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequest("invalid content-length") from exc
        body = await reader.readexactly(length) if length > 0 else b""
    return _HTTPRequest(method, target.split("?", 1)[0], version, headers, body)


async def _read_chunked_body(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequest(f"invalid chunk size line: {size_line!r}") from exc
        if size == 0:
            # Skip trailers up to the final empty line.
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # CRLF after the chunk data


def _response_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_LAST_HTTP_CHUNK = b"0\r\n\r\n"


class _ClientGone(Exception):
    """The client closed the connection while we were waiting or writing."""


def _client_gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    # The request has been fully read and HTTP clients do not pipeline, so EOF on the read side
    # means the client closed its socket (e.g. after its own timeout).
    return writer.is_closing() or reader.at_eof()


async def _sleep(
    seconds: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Sleep, but give up early (``_ClientGone``) if the client disconnects meanwhile."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(_POLL_INTERVAL, remaining))
        if _client_gone(reader, writer):
            raise _ClientGone


async def _write(data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    if _client_gone(reader, writer):
        # Writing to a dead transport only makes asyncio log "socket.send() raised exception".
        raise _ClientGone
    writer.write(data)
    await writer.drain()


# --------------------------------------------------------------------------------------------
# Payload builders
# --------------------------------------------------------------------------------------------


def _split_evenly(text: str, parts: int) -> list[str]:
    """Split ``text`` into ``parts`` contiguous, roughly equal, non-empty pieces (at least 1)."""
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _text_of(content: Any) -> str:
    """Text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            _text_of(part.get("text", "")) for part in content if isinstance(part, dict)
        )
    return ""


def _default_prompt_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages") or []
    words = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    return max(1, words)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@dataclass
class _Reply:
    """A stream step expanded into the deltas of its chunks."""

    preamble: dict[str, Any]
    deltas: list[dict[str, Any]]
    finish_reason: str
    completion_tokens: int
    # The full message, for non-streaming requests.
    message: dict[str, Any]


def _expand(step: TextReply | ToolCallsReply) -> _Reply:
    if isinstance(step, TextReply):
        text = "".join(step.deltas)
        return _Reply(
            preamble={"role": "assistant", "content": "", "refusal": None},
            deltas=[{"content": delta} for delta in step.deltas],
            finish_reason=step.finish_reason,
            completion_tokens=max(1, len(step.deltas)),
            message={"role": "assistant", "content": text, "refusal": None},
        )

    deltas: list[dict[str, Any]] = [{"content": delta} for delta in step.content]
    full_calls: list[dict[str, Any]] = []
    fragment_count = 0
    for index, call in enumerate(_as_tool_call(c) for c in step.calls):
        call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
        arguments = (
            call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
        )
        # As the real API does: the header chunk names the call, the following chunks carry
        # only the index and a fragment of the JSON arguments.
        header = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [header]})
        for fragment in _split_evenly(arguments, call.fragments):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            fragment_count += 1
        full_calls.append(
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": arguments},
            }
        )

    content = "".join(step.content) or None
    if step.content or not deltas:
        preamble: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    else:
        # Without text, the real API puts the role on the first tool-call header chunk.
        preamble = {"role": "assistant", "content": None, **deltas.pop(0)}
    return _Reply(
        preamble=preamble,
        deltas=deltas,
        finish_reason="tool_calls",
        completion_tokens=max(1, len(step.content) + fragment_count),
        message={
            "role": "assistant",
            "content": content,
            "refusal": None,
            "tool_calls": full_calls,
        },
    )


def _error_body(step: ErrorReply) -> dict[str, Any]:
    code: str | None = None
    if step.status == 429:
        message, error_type = "Rate limit reached for requests (fake).", "requests"
        code = "rate_limit_exceeded"
    elif step.status >= 500:
        message = "The server had an error while processing your request (fake)."
        error_type = "server_error"
    else:
        message, error_type = "Invalid request (fake).", "invalid_request_error"
    return {
        "error": {
            "message": step.message if step.message is not None else message,
            "type": step.error_type if step.error_type is not None else error_type,
            "param": None,
            "code": step.code if step.code is not None else code,
        }
    }


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class FakeOpenAI:
    """OpenAI-compatible chat-completions server running in a background thread.

    Queue replies with ``reply_text``, ``reply_tool_calls``, ``reply_error``,
    ``reply_broken_stream``, ``hang`` or ``enqueue``; each chat-completions request consumes
    the next one (``default_step`` when the queue is empty). Inspect ``requests`` afterwards.
    Use as a context manager or call ``start()`` / ``stop()``.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, default_step: Step | None = None
    ) -> None:
        self.host = host
        self.port = port  # replaced by the bound port on start() when 0
        self.default_step: Step = default_step if default_step is not None else default_reply()
        self.requests: list[RecordedRequest] = []
        # Steps are queued from the test thread and consumed on the server thread.
        self._lock = threading.Lock()
        self._queue: deque[Step] = deque()
        self._requests_changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._connection_ids = itertools.count(1)
        self._completion_ids = itertools.count(1)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """OpenAI ``base_url`` for clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def url(self) -> str:
        """Root URL of the server (control endpoints live under ``/_fake/``)."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server is not None

    def start(self) -> Self:
        """Bind the socket and start serving in a background thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("FakeOpenAI is already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="FakeOpenAI", daemon=True)
        thread.start()
        try:
            server = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(self._handle_connection, self.host, self.port), loop
            ).result(timeout=10)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
            raise
        self._loop, self._thread, self._server = loop, thread, server
        self.port = server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving, abort open connections (even hanging ones) and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = self._thread = self._server = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        # On Python 3.11 wait_closed() does not wait for connection handlers; cancel them so
        # idle keep-alive connections and hanging replies do not outlive the server.
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *steps: Step | Mapping[str, Any]) -> None:
        """Queue steps (dataclasses or their JSON dict form) for the next requests, in order."""
        converted = [_as_step(step) for step in steps]
        with self._lock:
            self._queue.extend(converted)

    def reply_text(
        self,
        deltas: Sequence[str],
        *,
        usage: tuple[int, int] | None = None,
        chunk_delay: float = 0.0,
        initial_delay: float = 0.0,
        die_after: int | None = None,
        finish_reason: str = "stop",
        model: str | None = None,
    ) -> TextReply:
        """Queue a text reply streamed as ``deltas``; returns the queued step."""
        step = TextReply(
            list(deltas),
            usage=usage,
            chunk_delay=chunk_delay,
            initial_delay=initial_delay,
            die_after=die_after,
            finish_reason=finish_reason,
            model=model,
        )
        self.enqueue(step)
        return step

    def reply_tool_calls(
        self,
        calls: Sequence[ToolCall | Mapping[str, Any]],
        *,
        content: Sequence[str] = (),
        usage: tuple[int, int] | None = None,
        chunk_delay: float = 0.0,
        initial_delay: float = 0.0,
        die_after: int | None = None,
        model: str | None = None,
    ) -> ToolCallsReply:
        """Queue a tool-calls reply (``ToolCall`` objects or dicts of its fields)."""
        step = ToolCallsReply(
            [_as_tool_call(call) for call in calls],
            content=list(content),
            usage=usage,
            chunk_delay=chunk_delay,
            initial_delay=initial_delay,
            die_after=die_after,
            model=model,
        )
        self.enqueue(step)
        return step

    def reply_error(
        self,
        status: int = 500,
        *,
        message: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        initial_delay: float = 0.0,
    ) -> ErrorReply:
        """Queue an HTTP error reply (e.g. 429 with ``retry_after``, or 500).

        ``message``, ``error_type`` and ``code`` fill the ``error`` object of the body; unset
        ones get defaults that depend on ``status``.
        """
        step = ErrorReply(status, message, error_type, code, retry_after, initial_delay)
        self.enqueue(step)
        return step

    def reply_broken_stream(
        self, deltas: Sequence[str], *, die_after: int, chunk_delay: float = 0.0
    ) -> TextReply:
        """Queue a text stream that is cut (TCP close, no ``[DONE]``) after ``die_after`` deltas."""
        return self.reply_text(deltas, die_after=die_after, chunk_delay=chunk_delay)

    def hang(self, seconds: float, then: Step | Mapping[str, Any] | None = None) -> Step:
        """Queue a reply that sends nothing for ``seconds``, then ``then`` (or ``default_step``)."""
        base = _as_step(then) if then is not None else self.default_step
        step = dataclasses.replace(base, initial_delay=seconds)
        self.enqueue(step)
        return step

    @property
    def pending(self) -> int:
        """Number of queued steps not consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent recorded request (``IndexError`` if none)."""
        return self.requests[-1]

    def reset(self) -> None:
        """Drop queued steps and recorded requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were recorded (``TimeoutError`` otherwise)."""
        with self._requests_changed:
            if not self._requests_changed.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"got {len(self.requests)} requests, expected {count}")
            return list(self.requests)

    def _next_step(self) -> Step:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default_step

    def _record(self, request: RecordedRequest) -> None:
        with self._requests_changed:
            self.requests.append(request)
            self._requests_changed.notify_all()

    # -- connection handling (server thread) -------------------------------------------------

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        connection_id = next(self._connection_ids)
        try:
            while True:
                try:
                    request = await _read_request(reader, writer)
                except _BadRequest as exc:
                    await self._send_json(writer, 400, {"error": {"message": str(exc)}}, False)
                    return
                if request is None:
                    return
                if not await self._dispatch(request, connection_id, reader, writer):
                    return
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError):
            pass  # The client went away; nothing to answer.
        except asyncio.CancelledError:
            # Only stop() cancels handlers, and the task ends right here. Not re-raising avoids
            # a spurious "Exception in callback" traceback from Python 3.11's StreamReaderProtocol
            # for connection tasks that end cancelled.
            pass
        except Exception:
            logger.exception("FakeOpenAI: unexpected error while handling a connection")
        finally:
            self._connections.discard(task)
            writer.close()

    async def _dispatch(
        self,
        request: _HTTPRequest,
        connection_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; returns whether the connection may be reused."""
        keep_alive = request.keep_alive
        if request.path.startswith("/_fake/"):
            return await self._control(request, writer, keep_alive)

        try:
            body = json.loads(request.body) if request.body else None
        except (ValueError, UnicodeDecodeError):
            body = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=request.headers,
            body=body,
            raw_body=request.body,
            received_at=time.time(),
            connection_id=connection_id,
        )

        if request.path in _MODELS_PATHS and request.method == "GET":
            self._record(record)
            models = {"object": "list", "data": [_model_entry(DEFAULT_MODEL)]}
            await self._send_json(writer, 200, models, keep_alive)
            return keep_alive
        if request.path not in _CHAT_PATHS:
            self._record(record)
            error = ErrorReply(404, message=f"Unknown path {request.path}")
            await self._send_json(writer, 404, _error_body(error), keep_alive)
            return keep_alive
        if request.method != "POST" or not isinstance(body, dict):
            self._record(record)
            error = ErrorReply(400, message="Expected a POST with a JSON object body")
            await self._send_json(writer, 400, _error_body(error), keep_alive)
            return keep_alive

        step = self._next_step()
        record.step = step
        # Record before replying so a client that got its answer always finds its request here.
        self._record(record)
        if step.initial_delay > 0:
            await _sleep(step.initial_delay, reader, writer)

        if isinstance(step, ErrorReply):
            headers = (
                [("retry-after", _format_seconds(step.retry_after))]
                if step.retry_after is not None
                else []
            )
            await self._send_json(writer, step.status, _error_body(step), keep_alive, headers)
            return keep_alive
        if body.get("stream"):
            return await self._stream(step, body, record, reader, writer, keep_alive)
        return await self._complete(step, body, writer, keep_alive)

    async def _complete(
        self,
        step: TextReply | ToolCallsReply,
        body: Mapping[str, Any],
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Non-streaming ``chat.completion`` reply."""
        reply = _expand(step)
        prompt_tokens, completion_tokens = step.usage or (
            _default_prompt_tokens(body),
            reply.completion_tokens,
        )
        payload = {
            "id": f"chatcmpl-fake{next(self._completion_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": step.model or body.get("model") or DEFAULT_MODEL,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": reply.message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": _usage(prompt_tokens, completion_tokens),
        }
        if step.die_after is None:
            await self._send_json(writer, 200, payload, keep_alive)
            return keep_alive
        # Announce the full length but send only half of it: an incomplete body for the client.
        data = json.dumps(payload).encode()
        writer.write(_response_head(200, _json_headers(len(data), keep_alive)))
        writer.write(data[: len(data) // 2])
        await writer.drain()
        return False

    async def _stream(
        self,
        step: TextReply | ToolCallsReply,
        body: Mapping[str, Any],
        record: RecordedRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Server-sent-events reply, one HTTP chunk per SSE event."""
        reply = _expand(step)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        completion_id = f"chatcmpl-fake{next(self._completion_ids)}"
        created = int(time.time())
        model = step.model or body.get("model") or DEFAULT_MODEL

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None) -> dict[str, Any]:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": choices,
            }
            if include_usage:
                # The real API sends "usage": null on every chunk but the last one.
                payload["usage"] = usage
            return payload

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

        async def send(payload: dict[str, Any]) -> None:
            payload["x_sent_at"] = time.time()
            record.chunks.append(payload)
            await _write(
                _http_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n"), reader, writer
            )

        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive" if keep_alive else "close"),
            ("x-request-id", f"req_{uuid.uuid4().hex}"),
        ]
        await _write(_response_head(200, headers), reader, writer)
        await send(chunk([choice(reply.preamble)], None))

        deltas = reply.deltas if step.die_after is None else reply.deltas[: step.die_after]
        for delta in deltas:
            if step.chunk_delay > 0:
                await _sleep(step.chunk_delay, reader, writer)
            await send(chunk([choice(delta)], None))
        if step.die_after is not None:
            # Cut the stream: no finish chunk, no [DONE], no terminating HTTP chunk. close()
            # flushes what was written first, so the client does receive the first chunks.
            writer.close()
            return False

        await send(chunk([choice({}, reply.finish_reason)], None))
        if include_usage:
            prompt_tokens, completion_tokens = step.usage or (
                _default_prompt_tokens(body),
                reply.completion_tokens,
            )
            await send(chunk([], _usage(prompt_tokens, completion_tokens)))
        # [DONE] and the end of the body in one write: the OpenAI client drains the body after
        # [DONE] for only ~100 ms before giving up on reusing the connection.
        await _write(_http_chunk(b"data: [DONE]\n\n") + _LAST_HTTP_CHUNK, reader, writer)
        return keep_alive

    async def _control(
        self, request: _HTTPRequest, writer: asyncio.StreamWriter, keep_alive: bool
    ) -> bool:
        """Serve the ``/_fake/...`` endpoints used to script a server in another process."""
        route = (request.method, request.path)
        if route == ("GET", "/_fake/health"):
            await self._send_json(writer, 200, {"ok": True}, keep_alive)
        elif route == ("GET", "/_fake/requests"):
            records = [record.to_dict() for record in list(self.requests)]
            await self._send_json(writer, 200, records, keep_alive)
        elif route == ("POST", "/_fake/reset"):
            self.reset()
            await self._send_json(writer, 200, {"ok": True}, keep_alive)
        elif route == ("POST", "/_fake/script"):
            try:
                data = json.loads(request.body)
                self.enqueue(*(data if isinstance(data, list) else [data]))
            except (ValueError, TypeError, KeyError) as exc:
                error = ErrorReply(400, message=f"Invalid script: {exc}")
                await self._send_json(writer, 400, _error_body(error), keep_alive)
            else:
                await self._send_json(
                    writer, 200, {"ok": True, "pending": self.pending}, keep_alive
                )
        else:
            error = ErrorReply(404, message=f"Unknown control endpoint {route}")
            await self._send_json(writer, 404, _error_body(error), keep_alive)
        return keep_alive

    @staticmethod
    async def _send_json(
        writer: asyncio.StreamWriter,
        status: int,
        payload: Any,
        keep_alive: bool,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        data = json.dumps(payload).encode()
        headers = [*_json_headers(len(data), keep_alive), *extra_headers]
        writer.write(_response_head(status, headers) + data)
        await writer.drain()


def _json_headers(length: int, keep_alive: bool) -> list[tuple[str, str]]:
    return [
        ("content-type", "application/json"),
        ("content-length", str(length)),
        ("connection", "keep-alive" if keep_alive else "close"),
        ("x-request-id", f"req_{uuid.uuid4().hex}"),
    ]


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "fake"}


# --------------------------------------------------------------------------------------------
# Separate process
# --------------------------------------------------------------------------------------------

READY_PREFIX = "FAKE_OPENAI_READY "


class FakeOpenAIProcess:
    """Runs ``python -m tests.fakeopenai`` in a subprocess and scripts it over HTTP.

    Note that an in-process ``FakeOpenAI`` already serves other processes (it listens on a real
    TCP port); use this class when the fake must outlive or be isolated from the test process.
    ``requests()`` returns ``RecordedRequest.to_dict()`` dicts.

    The benchmarks' fake LLM (bench/fakellm.py) is this class with another ``module`` (the
    same server with a larger listen backlog) and more patience: one way to start, stop and
    script the process for tests and benchmarks.
    """

    # ``python -m <module>`` serves the fake: ``main()`` below, or a wrapper around it.
    module = "tests.fakeopenai"
    # Seconds ``stop()`` waits after SIGTERM before SIGKILL.
    stop_timeout = 5.0

    def __init__(
        self,
        port: int = 0,
        *,
        script: Sequence[Step | Mapping[str, Any]] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        self.port = port
        self.script = [step_to_dict(_as_step(step)) for step in script]
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def base_url(self) -> str:
        """OpenAI ``base_url`` for clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def start(self) -> Self:
        """Start the subprocess and wait until it accepts connections; returns ``self``."""
        command = [sys.executable, "-m", self.module, "--port", str(self.port)]
        if self.script:
            command += ["--script", json.dumps(self.script)]
        project_root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, cwd=project_root, env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        # select() gives readline a deadline, so a broken child cannot hang the test session.
        ready, _, _ = select.select([self.process.stdout], [], [], self.startup_timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"fake OpenAI process did not start (got {line!r})")
        self.url = line[len(READY_PREFIX) :].strip().removesuffix("/v1")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Terminate the subprocess (SIGTERM, then SIGKILL after ``stop_timeout`` seconds)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def enqueue(self, *steps: Step | Mapping[str, Any]) -> None:
        """Queue steps on the server (``POST /_fake/script``)."""
        self._call("POST", "/_fake/script", [step_to_dict(_as_step(step)) for step in steps])

    def requests(self) -> list[dict[str, Any]]:
        """Requests recorded by the server (``GET /_fake/requests``)."""
        result: list[dict[str, Any]] = self._call("GET", "/_fake/requests")
        return result

    def reset(self) -> None:
        """Clear queued steps and recorded requests (``POST /_fake/reset``)."""
        self._call("POST", "/_fake/reset")

    def _call(self, method: str, path: str, payload: Any = None, timeout: float = 10) -> Any:
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _load_script(value: str) -> list[Step]:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    data = json.loads(text)
    return [step_from_dict(step) for step in (data if isinstance(data, list) else [data])]


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakeopenai", description="Fake OpenAI chat-completions server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--script",
        help="JSON list of steps (or @path to a JSON file) served before the default reply",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with FakeOpenAI(args.host, args.port) as fake:
        if args.script:
            fake.enqueue(*_load_script(args.script))
        print(f"{READY_PREFIX}{fake.base_url}", flush=True)
        # Event.wait() with a timeout keeps the main thread responsive to signals.
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
