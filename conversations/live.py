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

The same registry serves the credential sweep (`sweep_credentials`): while a
loop has open sockets, every CONFAB_WS_AUTH_CHECK_SECONDS one query finds the
tokens that stopped authenticating (expired, user deactivated or deleted) and
their sockets close 4401 (accounts.revocation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any

from django.conf import settings

from conversations import events
from conversations.close_codes import LIVE_INTERRUPTED, REVOKED, Close

logger = logging.getLogger(__name__)


# Open sockets of this process -> the event loop they run on.
_sockets: weakref.WeakKeyDictionary[Any, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()


# The credential sweep of each event loop that has open sockets.
_sweeps: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


def register(socket: Any) -> None:
    """Track an accepted websocket consumer (it has `close(code=, reason=)` and, once
    authenticated, `auth_token_id`)."""
    loop = asyncio.get_running_loop()
    _sockets[socket] = loop
    sweep = _sweeps.get(loop)
    if sweep is None or sweep.done():
        _sweeps[loop] = loop.create_task(sweep_credentials(loop))


def unregister(socket: Any) -> None:
    _sockets.pop(socket, None)


async def _close(socket: Any) -> None:
    with contextlib.suppress(Exception):
        await socket.close(code=Close.UNAVAILABLE, reason=LIVE_INTERRUPTED)


async def sweep_credentials(loop: asyncio.AbstractEventLoop) -> None:
    """Close 4401 the sockets of this loop whose token stopped authenticating.

    One query per CONFAB_WS_AUTH_CHECK_SECONDS for all of them (not one per
    socket); ends when the loop has no open socket left (`register` starts it
    again). Revocations close sockets at once through the channel layer; this
    catches what sends no message: expiry, deactivation, a lost message.
    """
    from accounts.revocation import valid_token_ids
    from conversations.turns.threads import in_turn_thread

    while True:
        await asyncio.sleep(settings.CONFAB_WS_AUTH_CHECK_SECONDS)
        sockets = [s for s, socket_loop in list(_sockets.items()) if socket_loop is loop]
        if not sockets:
            _sweeps.pop(loop, None)
            return
        held = {s: s.auth_token_id for s in sockets if getattr(s, "auth_token_id", None)}
        if not held:
            continue
        try:
            valid = await in_turn_thread(valid_token_ids)(set(held.values()))
        except Exception:
            logger.warning("Credential sweep failed; retrying", exc_info=True)
            continue
        for socket, token_id in held.items():
            if token_id not in valid:
                with contextlib.suppress(Exception):
                    await socket.close(code=Close.UNAUTHENTICATED, reason=REVOKED)


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


# A socket of this process would silently miss an event whose publish failed.
events.publish_failure_listeners.append(layer_failed)


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
    interval = settings.CONFAB_LIVE_CHECK_SECONDS
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
