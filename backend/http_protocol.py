"""uvicorn's HTTP protocol (httptools) with a deadline and a size limit on request heads.

uvicorn closes a keep-alive connection idle after a response (`--timeout-keep-alive`),
but has no timeout while a request head arrives, and its httptools protocol no
limit on the head's size: a client sending a header line every few seconds (or
10 MB of headers) held a connection, a task and the buffered head for ever. 200 of
200 such connections were still open after 70 s (issue 14, finding 14).

This protocol answers `408 Request Timeout` and closes the connection when a request
head (request line and headers) is not complete CONFAB_HTTP_HEADER_TIMEOUT seconds
after the connection opened or the previous response ended, and `431 Request Header
Fields Too Large` when it grows past CONFAB_HTTP_MAX_HEADER_BYTES. Request bodies
and websockets are not affected (their heads are complete before they start).

Use: `uvicorn backend.asgi:application --http backend.http_protocol:HeadLimitedHttpToolsProtocol`
(`make run` and docs/deploy.md do). Behind a proxy the proxy's own header timeout
applies first (docs/deploy.md); this one protects a server that is reached directly.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_HEADER_BYTES = 32 * 1024


def _refusal(status: bytes) -> bytes:
    body = status.split(b" ", 1)[1]
    return b"".join(
        [
            b"HTTP/1.1 " + status + b"\r\n",
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ]
    )


REQUEST_TIMEOUT = _refusal(b"408 Request Timeout")
HEADERS_TOO_LARGE = _refusal(b"431 Request Header Fields Too Large")


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a deadline and a size limit on each request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout = float(
            getattr(settings, "CONFAB_HTTP_HEADER_TIMEOUT", DEFAULT_HEADER_TIMEOUT)
        )
        self.max_head_bytes = int(
            getattr(settings, "CONFAB_HTTP_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES)
        )
        self.head_deadline: asyncio.TimerHandle | None = None
        self.head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_complete()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self.head_deadline is not None
        if waiting:
            self.head_bytes += len(data)
        super().data_received(data)
        # Still waiting after the parser took the data: the head is incomplete.
        if waiting and self.head_deadline is not None and self.head_bytes > self.max_head_bytes:
            self._refuse(HEADERS_TOO_LARGE)

    def on_headers_complete(self) -> None:
        self._head_complete()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request on a kept-alive connection (pipelined requests
        # have their heads already).
        if not self.transport.is_closing() and not self.pipeline:
            self._await_head()

    def _await_head(self) -> None:
        self._head_complete()
        self.head_bytes = 0
        self.head_deadline = self.loop.call_later(self.head_timeout, self._refuse, REQUEST_TIMEOUT)

    def _head_complete(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _refuse(self, response: bytes) -> None:
        self._head_complete()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
