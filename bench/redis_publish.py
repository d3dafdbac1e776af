"""Redis publishes per second: what one process's channel layer can push, for the
capacity plan (docs/scale.md).

Measured on the Redis at REDIS_URL (loopback), each for `--seconds`, in one run:

- baseline: PING round trips, one at a time (the loopback round trip);
- PUBLISH one at a time (channels_redis' `RedisPubSubChannelLayer` publishes this way);
- PUBLISH in pipelines of `--batch` (what `core.channel_layers.PipelinedPubSubChannelLayer`
  sends when publishes queue up);
- the product's layer: `group_send` of a delta-sized event from `--senders` concurrent
  tasks (each awaiting its own publish, like the turns of one process), with one
  subscribed group member per sender so every message is delivered.

Each row prints messages per second and the ratio to the baseline.

    .venv/bin/python -m bench.redis_publish [--seconds 5] [--batch 50] [--senders 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from bench.common import print_machine, redis_url, table

EVENT = {
    "type": "message.delta",
    "conversation_id": 123456,
    "message_id": 987654,
    "index": 42,
    "offset": 1234,
    "delta": "a few words of a reply, thirty milliseconds of tokens ",
}


async def rate(step, seconds: float, per_step: int = 1) -> float:
    """Messages per second of `step()` called back to back for `seconds`."""
    done = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        await step()
        done += per_step
    return done / (time.perf_counter() - start)


async def raw(seconds: float, batch: int) -> list[tuple[str, float]]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url())
    payload = json.dumps(EVENT).encode()
    try:
        ping = await rate(client.ping, seconds)

        async def one() -> None:
            await client.publish("confab-bench-publish", payload)

        async def pipelined() -> None:
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(batch):
                    pipe.publish("confab-bench-publish", payload)
                await pipe.execute()

        single = await rate(one, seconds)
        piped = await rate(pipelined, seconds, per_step=batch)
    finally:
        await client.aclose()
    return [
        ("PING, one at a time (baseline)", ping),
        ("PUBLISH, one at a time", single),
        (f"PUBLISH, pipelines of {batch}", piped),
    ]


async def layer(seconds: float, senders: int) -> tuple[float, float]:
    """group_send/s through the product's layer, and the share delivered."""
    os.environ.setdefault("REDIS_URL", redis_url())
    from core.channel_layers import PipelinedPubSubChannelLayer

    layer = PipelinedPubSubChannelLayer(
        hosts=[{"address": redis_url(), "socket_connect_timeout": 1}], prefix="confab-bench-pub"
    )
    listener = PipelinedPubSubChannelLayer(
        hosts=[{"address": redis_url(), "socket_connect_timeout": 1}], prefix="confab-bench-pub"
    )
    channels = []
    for index in range(senders):
        channel = await listener.new_channel()
        await listener.group_add(f"bench-{index}", channel)
        channels.append(channel)
    received = 0
    stop = asyncio.Event()

    async def drain(channel: str) -> None:
        nonlocal received
        while not stop.is_set():
            try:
                await asyncio.wait_for(listener.receive(channel), 0.5)
                received += 1
            except TimeoutError:
                continue

    drains = [asyncio.ensure_future(drain(channel)) for channel in channels]
    sent = 0
    deadline = time.perf_counter() + seconds

    async def sender(index: int) -> None:
        nonlocal sent
        while time.perf_counter() < deadline:
            await layer.group_send(f"bench-{index}", {"type": "chat.event", **EVENT})
            sent += 1

    start = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(senders)))
    elapsed = time.perf_counter() - start
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*drains, return_exceptions=True)
    await layer.flush()
    await listener.flush()
    return sent / elapsed, received / max(sent, 1)


async def run(args: argparse.Namespace) -> None:
    rows = await raw(args.seconds, args.batch)
    per_second, delivered = await layer(args.seconds, args.senders)
    baseline = rows[0][1]
    rows.append(
        (
            f"product layer group_send, {args.senders} concurrent senders "
            f"({delivered:.1%} delivered, sender and receivers in this one process)",
            per_second,
        )
    )
    print(
        table(
            ["what", "messages/s", "vs PING baseline"],
            [[name, f"{value:,.0f}", f"{value / baseline:.2f}x"] for name, value in rows],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--senders", type=int, default=200)
    args = parser.parse_args()
    print_machine()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
