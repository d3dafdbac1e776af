"""Redis publishes per second: what one process's channel layer can push, for the
capacity plan (docs/scale.md).

Measured on a private redis-server started for the run (loopback; its INFO cpu
counts only this benchmark), each case for `--seconds`, in one run:

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


REDIS_CPU: dict[str, float] = {}


def redis_cpu() -> float:
    """CPU seconds the Redis server has used (INFO cpu: user + system, all threads)."""
    import redis

    info = redis.Redis.from_url(redis_url()).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def rate(step, seconds: float, per_step: int = 1, name: str = "") -> float:
    """Messages per second of `step()` called back to back for `seconds`; the Redis
    server's CPU seconds per message go to REDIS_CPU[name]."""
    done = 0
    cpu = redis_cpu()
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        await step()
        done += per_step
    per_second = done / (time.perf_counter() - start)
    REDIS_CPU[name] = (redis_cpu() - cpu) / done
    return per_second


async def raw(seconds: float, batch: int) -> list[tuple[str, float]]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url())
    payload = json.dumps(EVENT).encode()
    try:
        ping = await rate(client.ping, seconds, name="ping")

        async def one() -> None:
            await client.publish("confab-bench-publish", payload)

        async def pipelined() -> None:
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(batch):
                    pipe.publish("confab-bench-publish", payload)
                await pipe.execute()

        single = await rate(one, seconds, name="single")
        piped = await rate(pipelined, seconds, per_step=batch, name="piped")
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

    cpu = redis_cpu()
    start = time.perf_counter()
    await asyncio.gather(*(sender(i) for i in range(senders)))
    elapsed = time.perf_counter() - start
    REDIS_CPU["layer"] = (redis_cpu() - cpu) / max(sent, 1)
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
    keys = ["ping", "single", "piped", "layer"]
    print(
        table(
            [
                "what",
                "messages/s",
                "vs PING baseline",
                "Redis CPU us per message",
                "per Redis core-second",
            ],
            [
                [
                    name,
                    f"{value:,.0f}",
                    f"{value / baseline:.2f}x",
                    f"{REDIS_CPU[key] * 1e6:.1f}",
                    f"{1 / REDIS_CPU[key]:,.0f}" if REDIS_CPU[key] > 0 else "-",
                ]
                for key, (name, value) in zip(keys, rows, strict=True)
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--senders", type=int, default=200)
    args = parser.parse_args()
    print_machine()
    # A private redis-server: INFO cpu counts only this benchmark's commands.
    import shutil
    import tempfile
    from pathlib import Path

    from tests.support.daemons import start_redis

    directory = Path(tempfile.mkdtemp(prefix="confab-bench-redis-"))
    server = start_redis(directory)
    os.environ["BENCH_REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
    try:
        asyncio.run(run(args))
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
