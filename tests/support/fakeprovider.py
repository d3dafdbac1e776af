"""The shared part of the fake provider servers (fake_anthropic, fake_gemini, fake_ollama).

A tiny HTTP/1.1 server in a background thread (the request reading and chunked writing
of tests/support/fakeopenai/wire.py), scripted with provider-neutral steps; each provider module
turns a step into its own wire format (`frames`: the streamed events, in order, each
sent as one HTTP chunk). Requests are recorded with their JSON body.

Steps:
- `Reply(text=[...], tool_calls=[{"name", "args", "id"}], usage=(input, output))`:
  streams the text deltas, then the tool calls, then the usage and the end.
  `die_after=N` sends only the first N frames and closes the connection (a cut stream);
  `initial_delay` waits before answering anything (a hung provider).
- `Fail(status, message)`: an HTTP error in the provider's error body.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from tests.support.fakeopenai.wire import (
    LAST_HTTP_CHUNK,
    BadRequest,
    ClientGone,
    http_chunk,
    read_request,
    response_head,
    sleep_while_connected,
    write_while_connected,
)


@dataclass
class Reply:
    text: list[str] = field(default_factory=lambda: ["Hello", " there"])
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: tuple[int, int] = (12, 3)
    die_after: int | None = None
    initial_delay: float = 0.0
    chunk_delay: float = 0.0


@dataclass
class Fail:
    status: int
    message: str = "The fake provider failed on purpose."
    initial_delay: float = 0.0


Step = Reply | Fail


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


class FakeProvider:
    """Subclasses set `content_type` and implement `frames` and `error_body`."""

    content_type = "text/event-stream"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queue: deque[Step] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- what a provider module implements -----------------------------------------------

    def frames(self, step: Reply, request: Recorded) -> list[bytes]:
        raise NotImplementedError

    def error_body(self, step: Fail) -> dict[str, Any]:
        raise NotImplementedError

    # -- scripting -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def enqueue(self, *steps: Step) -> None:
        with self._lock:
            self._queue.extend(steps)

    def _next(self) -> Step:
        with self._lock:
            return self._queue.popleft() if self._queue else Reply()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=type(self).__name__, daemon=True)
        thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), loop
        ).result(timeout=10)
        self._loop, self._thread, self._server = loop, thread, server
        self.port = server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await read_request(reader, writer)
                if request is None:
                    return
                target = request.path
                raw = request.body
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                record = Recorded(request.method, target, "", request.headers, body)
                with self._lock:
                    self.requests.append(record)
                if not await self._answer(self._next(), record, reader, writer):
                    return
        except (BadRequest, ClientGone, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer(
        self,
        step: Step,
        record: Recorded,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; whether the connection stays open."""
        if step.initial_delay:
            await sleep_while_connected(step.initial_delay, reader, writer)
        if isinstance(step, Fail):
            data = json.dumps(self.error_body(step)).encode()
            head = [("content-type", "application/json"), ("content-length", str(len(data)))]
            if step.status == 429:
                head.append(("retry-after", "0"))
            await write_while_connected(response_head(step.status, head) + data, reader, writer)
            return True
        frames = self.frames(step, record)
        head = [("content-type", self.content_type), ("transfer-encoding", "chunked")]
        await write_while_connected(response_head(200, head), reader, writer)
        for index, frame in enumerate(frames):
            if step.die_after is not None and index >= step.die_after:
                # Cut: no terminating chunk, the connection just closes.
                writer.transport.abort()
                return False
            if step.chunk_delay:
                await sleep_while_connected(step.chunk_delay, reader, writer)
            await write_while_connected(http_chunk(frame), reader, writer)
        await write_while_connected(LAST_HTTP_CHUNK, reader, writer)
        return True


def sse(event: str | None, data: dict[str, Any]) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()
