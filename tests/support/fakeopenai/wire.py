"""The minimal HTTP/1.1 the fake server speaks: request heads, chunked bodies, hang-ups."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

logger = logging.getLogger(__name__)

# How often sleeping handlers check whether the client hung up: small enough for stop() and
# client timeouts to be prompt, large enough not to matter for CPU.
_POLL_INTERVAL = 0.02


class BadRequest(Exception):
    """The bytes received are not an HTTP/1.1 request we understand."""


@dataclass
class HTTPRequest:
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


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> HTTPRequest | None:
    """Read one request; ``None`` when the client closed the connection between requests."""
    line = await reader.readline()
    # RFC 9112 section 2.2: ignore empty lines received before a request line.
    while line in (b"\r\n", b"\n"):
        line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"malformed request line: {line!r}")
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
            raise BadRequest(f"malformed header line: {header_line!r}")
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
            raise BadRequest("invalid content-length") from exc
        body = await reader.readexactly(length) if length > 0 else b""
    return HTTPRequest(method, target.split("?", 1)[0], version, headers, body)


async def _read_chunked_body(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BadRequest(f"invalid chunk size line: {size_line!r}") from exc
        if size == 0:
            # Skip trailers up to the final empty line.
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # CRLF after the chunk data


def response_head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_HTTP_CHUNK = b"0\r\n\r\n"


class ClientGone(Exception):
    """The client closed the connection while we were waiting or writing."""


def _client_gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    # The request has been fully read and HTTP clients do not pipeline, so EOF on the read side
    # means the client closed its socket (e.g. after its own timeout).
    return writer.is_closing() or reader.at_eof()


async def sleep_while_connected(
    seconds: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Sleep, but give up early (``ClientGone``) if the client disconnects meanwhile."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(_POLL_INTERVAL, remaining))
        if _client_gone(reader, writer):
            raise ClientGone


async def write_while_connected(
    data: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    if _client_gone(reader, writer):
        # Writing to a dead transport only makes asyncio log "socket.send() raised exception".
        raise ClientGone
    writer.write(data)
    await writer.drain()
