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

In pytest, use the ``fake_openai`` fixture from ``tests.support.fakeopenai``.

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
``python -m tests.support.fakeopenai [--host H] [--port 0] [--script JSON | --script @file.json]``
prints ``FAKE_OPENAI_READY http://HOST:PORT/v1`` on stdout once it accepts connections, then
serves until SIGINT/SIGTERM. ``FakeOpenAIProcess`` wraps this for tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from tests.support.fakeopenai.recorded import RecordedRequest
from tests.support.fakeopenai.replies import default_prompt_tokens, error_body, expand, usage
from tests.support.fakeopenai.scripts import (
    DEFAULT_MODEL,
    ErrorReply,
    Step,
    TextReply,
    ToolCall,
    ToolCallsReply,
    as_step,
    as_tool_call,
    default_reply,
)
from tests.support.fakeopenai.wire import (
    LAST_HTTP_CHUNK,
    BadRequest,
    ClientGone,
    HTTPRequest,
    http_chunk,
    read_request,
    response_head,
    sleep_while_connected,
    write_while_connected,
)

logger = logging.getLogger(__name__)

_CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})


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
        converted = [as_step(step) for step in steps]
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
            [as_tool_call(call) for call in calls],
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
        base = as_step(then) if then is not None else self.default_step
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
                    request = await read_request(reader, writer)
                except BadRequest as exc:
                    await self._send_json(writer, 400, {"error": {"message": str(exc)}}, False)
                    return
                if request is None:
                    return
                if not await self._dispatch(request, connection_id, reader, writer):
                    return
        except (ClientGone, ConnectionError, asyncio.IncompleteReadError):
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
        request: HTTPRequest,
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
            await self._send_json(writer, 404, error_body(error), keep_alive)
            return keep_alive
        if request.method != "POST" or not isinstance(body, dict):
            self._record(record)
            error = ErrorReply(400, message="Expected a POST with a JSON object body")
            await self._send_json(writer, 400, error_body(error), keep_alive)
            return keep_alive

        step = self._next_step()
        record.step = step
        # Record before replying so a client that got its answer always finds its request here.
        self._record(record)
        if step.initial_delay > 0:
            await sleep_while_connected(step.initial_delay, reader, writer)

        if isinstance(step, ErrorReply):
            headers = (
                [("retry-after", _format_seconds(step.retry_after))]
                if step.retry_after is not None
                else []
            )
            await self._send_json(writer, step.status, error_body(step), keep_alive, headers)
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
        reply = expand(step)
        prompt_tokens, completion_tokens = step.usage or (
            default_prompt_tokens(body),
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
            "usage": usage(prompt_tokens, completion_tokens),
        }
        if step.die_after is None:
            await self._send_json(writer, 200, payload, keep_alive)
            return keep_alive
        # Announce the full length but send only half of it: an incomplete body for the client.
        data = json.dumps(payload).encode()
        writer.write(response_head(200, _json_headers(len(data), keep_alive)))
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
        reply = expand(step)
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
            await write_while_connected(
                http_chunk(b"data: " + json.dumps(payload).encode() + b"\n\n"), reader, writer
            )

        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive" if keep_alive else "close"),
            ("x-request-id", f"req_{uuid.uuid4().hex}"),
        ]
        await write_while_connected(response_head(200, headers), reader, writer)
        await send(chunk([choice(reply.preamble)], None))

        deltas = reply.deltas if step.die_after is None else reply.deltas[: step.die_after]
        for delta in deltas:
            if step.chunk_delay > 0:
                await sleep_while_connected(step.chunk_delay, reader, writer)
            await send(chunk([choice(delta)], None))
        if step.die_after is not None:
            # Cut the stream: no finish chunk, no [DONE], no terminating HTTP chunk. close()
            # flushes what was written first, so the client does receive the first chunks.
            writer.close()
            return False

        await send(chunk([choice({}, reply.finish_reason)], None))
        if include_usage:
            prompt_tokens, completion_tokens = step.usage or (
                default_prompt_tokens(body),
                reply.completion_tokens,
            )
            await send(chunk([], usage(prompt_tokens, completion_tokens)))
        # [DONE] and the end of the body in one write: the OpenAI client drains the body after
        # [DONE] for only ~100 ms before giving up on reusing the connection.
        await write_while_connected(
            http_chunk(b"data: [DONE]\n\n") + LAST_HTTP_CHUNK, reader, writer
        )
        return keep_alive

    async def _control(
        self, request: HTTPRequest, writer: asyncio.StreamWriter, keep_alive: bool
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
                await self._send_json(writer, 400, error_body(error), keep_alive)
            else:
                await self._send_json(
                    writer, 200, {"ok": True, "pending": self.pending}, keep_alive
                )
        else:
            error = ErrorReply(404, message=f"Unknown control endpoint {route}")
            await self._send_json(writer, 404, error_body(error), keep_alive)
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
        writer.write(response_head(status, headers) + data)
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
