"""core.channel_layers.PipelinedPubSubChannelLayer: nothing lost, order kept per sender."""

from __future__ import annotations

import asyncio
import os
import uuid

from core.channel_layers import PipelinedPubSubChannelLayer
from tests.support.requirements import needs_redis

pytestmark = needs_redis("the Redis channel layer")


async def test_concurrent_senders_deliver_everything_in_order():
    layer = PipelinedPubSubChannelLayer(
        hosts=[os.environ["REDIS_URL"]], prefix=f"confab-test-layer-{uuid.uuid4().hex[:8]}"
    )
    try:
        receivers = [await layer.new_channel() for _ in range(2)]
        for channel in receivers:
            await layer.group_add("room", channel)
        senders, per_sender = 20, 50

        async def send(sender: int) -> None:
            # One sender's messages go out one after another, as a turn's events do.
            for index in range(per_sender):
                await layer.group_send("room", {"type": "t", "sender": sender, "index": index})

        await asyncio.gather(*(send(sender) for sender in range(senders)))
        for channel in receivers:
            seen: dict[int, list[int]] = {sender: [] for sender in range(senders)}
            for _ in range(senders * per_sender):
                message = await asyncio.wait_for(layer.receive(channel), 5)
                seen[message["sender"]].append(message["index"])
            assert all(indexes == list(range(per_sender)) for indexes in seen.values())
    finally:
        await layer.flush()
