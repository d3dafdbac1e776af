"""Close live websockets when the channel layer fails, so clients resync instead of
silently missing events.

Live events travel through the channel layer (Redis in production). While it is
unreachable, publishing fails (`events.apublish` logs it and returns False): the
data is stored, its delivery is lost. A socket that quietly missed events would
show a finished reply as streaming forever. So each process watches its layer
(a PING every CONFAB_LIVE_CHECK_SECONDS while it has open sockets, plus every
failed publish) and, when the layer fails, closes its open websockets with 4503
"Live updates interrupted". Clients reconnect (refused with 4503 while Redis is
down), then resume from the stored data (`resume {after_id}`, or the GraphQL
snapshot + `messages`). After Redis is back, new and re-opened sockets stream
live again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

CLOSE_UNAVAILABLE = 4503
INTERRUPTED = "Live updates interrupted"
DEFAULT_CHECK_SECONDS = 1.0

# Open sockets of this process -> the event loop they run on.
_sockets: weakref.WeakKeyDictionary[Any, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()


def register(socket: Any) -> None:
    """Track an accepted websocket consumer (it has `close(code=, reason=)`)."""
    _sockets[socket] = asyncio.get_running_loop()


def unregister(socket: Any) -> None:
    _sockets.pop(socket, None)


def open_sockets() -> int:
    return len(_sockets)


async def _close(socket: Any) -> None:
    with contextlib.suppress(Exception):
        await socket.close(code=CLOSE_UNAVAILABLE, reason=INTERRUPTED)


def layer_failed(cause: str = "a publish failed") -> None:
    """The channel layer failed (a publish or a health check): close every open socket."""
    sockets = list(_sockets.items())
    _sockets.clear()
    if sockets:
        logger.warning(
            "Channel layer unavailable (%s): closing %d live socket(s) with 4503",
            cause,
            len(sockets),
        )
    for socket, loop in sockets:
        if loop.is_closed():
            continue
        loop.call_soon_threadsafe(lambda s=socket: asyncio.ensure_future(_close(s)))


def _redis_client(interval: float) -> Any | None:
    """A client of the Redis the channel layer uses (the sentinels' current master with
    Sentinel), None for other layers (nothing to watch)."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    hosts = layer.get("CONFIG", {}).get("hosts") or []
    if not hosts:
        return None
    host = hosts[0]
    if isinstance(host, dict) and host.get("master_name"):
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(
            host["sentinels"],
            sentinel_kwargs=host.get("sentinel_kwargs"),
            socket_connect_timeout=interval,
            socket_timeout=interval,
        )
        return sentinel.master_for(host["master_name"], db=host.get("db", 0))
    address = host if isinstance(host, str) else host.get("address")
    if not (isinstance(address, str) and address.startswith("redis")):
        return None
    from redis.asyncio import Redis

    return Redis.from_url(address, socket_connect_timeout=interval, socket_timeout=interval)


async def _unreachable(client: Any) -> Exception | None:
    """None when Redis answers a PING; the error otherwise. A failure is tried once more
    on a new connection: the first use of a connection from before a Redis restart
    fails although Redis is back."""
    error: Exception | None = None
    for _ in range(2):
        try:
            await client.ping()
            return None
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            error = exc
            with contextlib.suppress(Exception):
                await client.connection_pool.disconnect()
    return error


async def watch_layer() -> None:
    """Check the channel layer while this process has open sockets (forever, until
    cancelled at shutdown)."""
    interval = getattr(settings, "CONFAB_LIVE_CHECK_SECONDS", DEFAULT_CHECK_SECONDS)
    client = _redis_client(interval)
    if client is None:
        return
    healthy = True
    try:
        while True:
            await asyncio.sleep(interval)
            if not _sockets and healthy:
                continue
            error = await _unreachable(client)
            if error is not None:
                if healthy:
                    logger.warning("Channel layer unreachable: %r", error)
                healthy = False
                layer_failed(f"health check: {error!r}")
                continue
            if not healthy:
                logger.warning("Channel layer reachable again; live updates resume.")
            healthy = True
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
