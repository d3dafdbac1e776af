"""channels_redis's pub/sub layer with pipelined publishing.

`channels_redis.pubsub.RedisPubSubChannelLayer` (4.3) sends every PUBLISH under one
asyncio lock per Redis shard and awaits its reply before releasing it: a process has
at most one publish in flight. Each reply is read by the event loop, so under load a
publish costs a whole loop iteration, and the deltas of hundreds of streaming replies
queued behind each other (seconds of relay latency; bench/streaming.py, bench/
BENCHMARKS.md).

Here publishes are queued and a single sender writes everything queued so far as one
pipeline (one write, one round trip), while new ones gather for the next. Order is
kept: a pipeline runs its commands in order, batches go out one after the other, and
each caller still awaits its own publish (the turn engine publishes a reply's events
one after another).

Subscribing and receiving are channels_redis's, with one change: the shard's pub/sub
connection is (re)connected only while its receive loop is not reading (see
`_PipelinedShard._reading`).

Use: `CHANNEL_LAYERS["default"]["BACKEND"] = "core.channel_layers.PipelinedPubSubChannelLayer"`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close, decode_hosts

logger = logging.getLogger(__name__)

# How long the receive loop waits for a message before it lets a reconnect in.
RECEIVE_TIMEOUT_SECONDS = 0.1
RECEIVE_ERROR_PAUSE_SECONDS = 1.0


class _PipelinedShard(RedisSingleShardConnection):
    def __init__(self, host: Any, channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._outbox: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._sender: asyncio.Future[None] | None = None
        # Held by the receive loop while it reads, and by whoever (re)connects the pub/sub
        # connection. After a Redis restart, channels_redis let a subscribe (a socket's
        # handshake) reconnect while its receive loop reconnected or read the same
        # connection: both read one stream, both failed ("Connection closed by server",
        # "readuntil() called while another coroutine is already waiting"), and the socket
        # was refused 4503 although Redis was back.
        self._reading = asyncio.Lock()

    async def subscribe(self, channel: str) -> None:
        async with self._lock:
            if channel in self._subscribed_to:
                return
            await self._connect_pubsub()
            await self._pubsub.subscribe(channel)
            self._subscribed_to.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            if channel not in self._subscribed_to:
                return
            await self._connect_pubsub()
            await self._pubsub.unsubscribe(channel)
            self._subscribed_to.remove(channel)

    async def _connect_pubsub(self) -> None:
        """Start the receive loop and connect the pub/sub connection if it is not (then
        the connection resubscribes what it had), never while the loop reads."""
        self._ensure_redis()
        self._ensure_receiver()
        connection = self._pubsub.connection
        if connection is None or not connection.is_connected:
            async with self._reading:
                await self._pubsub.connect()

    async def _do_receiving(self) -> None:
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    async with self._reading:
                        message = await self._pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=RECEIVE_TIMEOUT_SECONDS
                        )
                    self._receive_message(message)
                else:
                    await asyncio.sleep(RECEIVE_TIMEOUT_SECONDS)
            except Exception:  # cancellation is a BaseException: it ends the loop
                logger.exception("Unexpected exception in receive task")
                await asyncio.sleep(RECEIVE_ERROR_PAUSE_SECONDS)

    async def publish(self, channel: str, message: bytes) -> None:
        if self._redis is None:
            async with self._lock:
                self._ensure_redis()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((channel, message, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_outbox())
        await done

    async def _send_outbox(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                if self._redis is None:  # flushed meanwhile
                    self._ensure_redis()
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel, message, _ in batch:
                        pipe.publish(channel, message)
                    await pipe.execute()
            except Exception as exc:  # noqa: BLE001 - every waiting publisher gets it
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)


class _PipelinedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts: Any = None, **kwargs: Any) -> None:
        super().__init__(hosts=hosts, **kwargs)
        self._shards = [_PipelinedShard(host, self) for host in decode_hosts(hosts)]


class PipelinedPubSubChannelLayer(RedisPubSubChannelLayer):
    """`RedisPubSubChannelLayer` whose publishes are pipelined (see the module docstring)."""

    def _get_layer(self) -> RedisPubSubLoopLayer:
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = _PipelinedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer
