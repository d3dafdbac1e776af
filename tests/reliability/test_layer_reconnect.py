"""The pub/sub channel layer right after Redis restarted (CI failure of test_redis_outage).

After a restart, the shard's one pub/sub connection is reconnected by whoever uses it
first: channels_redis's receive loop (every 0.1 s, or a second after an error) or a
subscribe (every socket's handshake: `new_channel`, `group_add`). When both did at
the same moment, both read the same stream and both failed, and the socket was
refused 4503 "Live updates unavailable" with Redis up. Here that moment is made
certain: the receive loop starts its first read exactly as a handshake subscribes.
"""

from __future__ import annotations

import asyncio

from core.channel_layers import PipelinedPubSubChannelLayer

GUARD = 20  # seconds: a hang fails the test instead of blocking the run


async def test_subscribe_while_the_receive_loop_reconnects(private_redis):
    layer = PipelinedPubSubChannelLayer(hosts=[{"address": private_redis.url}])
    first = await layer.new_channel()
    await layer.group_add("chat", first)
    shard = layer._get_layer()._shards[0]
    shard._receive_task.cancel()

    private_redis.kill()
    private_redis.start()
    await shard._pubsub.connection.disconnect()  # as the failed reads after the kill left it
    shard._receive_task = asyncio.ensure_future(shard._do_receiving())
    try:
        second = await asyncio.wait_for(layer.new_channel(), GUARD)
        await asyncio.wait_for(layer.group_add("chat", second), GUARD)

        # Both channels were subscribed again on the new connection and receive.
        await layer.group_send("chat", {"type": "chat.message", "text": "back"})
        for channel in (first, second):
            message = await asyncio.wait_for(layer.receive(channel), GUARD)
            assert message == {"type": "chat.message", "text": "back"}
    finally:
        await layer.flush()
