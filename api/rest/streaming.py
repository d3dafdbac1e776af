"""Streaming a synchronous generator of bytes (one that reads the database) under ASGI.

Django's ASGI handler consumes a *sync* iterator of a StreamingHttpResponse whole, into
a list, before sending a byte. `async_chunks` hands Django an async iterator instead:
each step pulls about `batch_bytes` from the generator in the request's thread
(`sync_to_async`, thread-sensitive: the same thread and database connection as the
view), so only that much is held at a time whatever the response's length.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from asgiref.sync import sync_to_async

BATCH_BYTES = 64 * 1024


def async_chunks(
    chunks: Iterable[bytes], *, batch_bytes: int = BATCH_BYTES
) -> AsyncIterator[bytes]:
    """`chunks` as an async iterator of byte strings of about `batch_bytes`."""
    iterator = iter(chunks)

    def next_batch() -> tuple[bytes, bool]:
        parts, size = [], 0
        for chunk in iterator:
            parts.append(chunk)
            size += len(chunk)
            if size >= batch_bytes:
                return b"".join(parts), False
        return b"".join(parts), True

    def close() -> None:
        close_iterator = getattr(iterator, "close", None)
        if close_iterator is not None:
            close_iterator()

    async def stream() -> AsyncIterator[bytes]:
        try:
            done = False
            while not done:
                data, done = await sync_to_async(next_batch)()
                if data:
                    yield data
        finally:
            # A client that went away: the generator's files and zip are closed.
            await sync_to_async(close)()

    return stream()
