"""Server-added time to first token at N = 1 (issue 21, target 3), on every surface.

    python -m bench.ttft [--turns 40] [--quick]

One turn at a time through 2 uvicorn workers (bench settings, Redis layer, PostgreSQL)
and the fake OpenAI server (its own process), on three surfaces, interleaved turn by
turn so load from other processes hits them alike:

- `sse`: `POST /api/v1/conversations/<id>/messages/` with `Accept: text/event-stream`;
- `ws`: a `message` frame on the chat websocket;
- `graphql`: `sendMessage` on a graphql-transport-ws socket that subscribed to
  `conversationEvents` (bench/streaming.py's clients).

Server-added time to first token = (client: request sent -> first `message.delta`
received) - (fake provider: request received -> first chunk sent), the provider's own
first-chunk delay taken out with the fake's own timestamps. Split into "to provider"
(request sent -> the provider request arrives: the turn's start-up) and "first chunk to
client" (the fake sends chunk 0 -> the client has it: the relay of the first delta).
Every turn has its own user and conversation; every reply must end complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from bench.common import (
    Summary,
    Target,
    ensure_database,
    fmt_ms,
    print_machine,
    print_targets,
    setup_django,
    start_spy,
    stop_spy,
    table,
)
from bench.streaming import (
    Turn,
    chunk_send_times,
    chunk_texts,
    prepare_turns,
    run_chat_client,
    run_graphql_client,
)

SURFACES = ("sse", "ws", "graphql")
CHUNKS = 5
TARGET_P95_MS = 20.0


async def run_sse_client(turn: Turn, base_url: str, start: asyncio.Event, ready: Any) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {turn.token}", "Accept": "text/event-stream"}
    url = f"{base_url}/api/v1/conversations/{turn.conversation_id}/messages/"
    async with httpx.AsyncClient(timeout=60) as client:
        await client.get(f"{base_url}/healthz")  # the connection is open before the turn
        ready()
        await start.wait()
        turn.sent_at = time.time()
        body = {"content": turn.content, "client_message_id": "b1"}
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                turn.error = f"HTTP {response.status_code}"
                return
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    now = time.time()
                    event = json.loads(line[6:])
                    if kind == "message.delta":
                        turn.on_delta(event["index"], event["offset"], event["delta"], now)
                    elif kind in ("message.completed", "message.failed"):
                        message = event["message"]
                        if message["role"] == "ai":
                            turn.final_text = message["text"]
                            turn.final_status = message["status"]
                            turn.done_at = now
                            return


async def one_turn(surface: str, turn: Turn, base_url: str, ws_url: str) -> None:
    """Connect, wait 50 ms (connection work done), send, read until the reply is final."""
    start = asyncio.Event()
    loop = asyncio.get_running_loop()

    def ready() -> None:
        loop.call_later(0.05, start.set)

    if surface == "sse":
        client = run_sse_client(turn, base_url, start, ready)
    elif surface == "ws":
        client = run_chat_client(turn, ws_url, start, ready)
    else:
        client = run_graphql_client(turn, ws_url, start, ready)
    try:
        await asyncio.wait_for(client, 60)
    except Exception as exc:  # recorded per turn, reported below
        turn.error = turn.error or f"{type(exc).__name__}: {exc}"[:200]


def measure(
    fake: Any, rounds: int, warmup: int, *, profile: bool = False
) -> dict[str, dict[str, list[float]]]:
    """`rounds` turns per surface (after `warmup` untimed ones), interleaved."""
    from bench.server import start_uvicorn

    total = (rounds + warmup) * len(SURFACES)
    turns = prepare_turns(total, CHUNKS, prefix="bench-ttft")
    fake.call("POST", "/_fake/reset")
    step = {"type": "text", "deltas": chunk_texts(CHUNKS), "chunk_delay": 0.01}
    fake.call("POST", "/_fake/script", [step] * total)
    env = {
        "OPENAI_BASE_URL": fake.base_url,
        "CONFAB_LLM_PROVIDER": "openai",
        "CONFAB_LLM_MAX_RETRIES": "0",
        "CONFAB_REDIS_PREFIX": f"confab-bench-ttft-{os.getpid()}",
    }
    order: list[tuple[str, Turn, bool]] = []
    for r in range(rounds + warmup):
        for s, surface in enumerate(SURFACES):
            order.append((surface, turns[r * len(SURFACES) + s], r < warmup))
    with start_uvicorn(workers=2, env=env) as server:
        base_url = server.url

        async def run_all() -> None:
            for surface, turn, _ in order:
                await one_turn(surface, turn, base_url, server.ws_url)

        spies = []
        if profile:
            for pid in server.worker_pids():
                out = f"/tmp/confab-bench-spy-ttft-{pid}.txt"
                print(f"# py-spy (wall time, every thread) on worker {pid}: {out}")
                spies.append(start_spy(pid, out))
        try:
            asyncio.run(run_all())
        finally:
            for spy in spies:
                stop_spy(spy)
    sent, arrived = chunk_send_times(fake, turns)
    out: dict[str, dict[str, list[float]]] = {
        s: {"added": [], "setup": [], "relay": [], "ttft": [], "errors": []} for s in SURFACES
    }
    for surface, turn, is_warmup in order:
        cell = out[surface]
        ok = turn.final_status == "complete" and turn.final_text == turn.expected
        if not ok:
            cell["errors"].append(f"{turn.final_status}: {turn.error}")
            continue
        if is_warmup or turn.index not in arrived or 0 not in sent.get(turn.index, {}):
            continue
        provider_delay = sent[turn.index][0] - arrived[turn.index]
        ttft = turn.first_delta_at - turn.sent_at
        cell["ttft"].append(ttft)
        cell["added"].append(ttft - provider_delay)
        cell["setup"].append(arrived[turn.index] - turn.sent_at)
        cell["relay"].append(turn.first_delta_at - sent[turn.index][0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=40, help="timed turns per surface")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20 turns per surface, < 3 min")
    parser.add_argument("--profile", action="store_true", help="py-spy each worker (wall time)")
    args = parser.parse_args()
    if args.quick:
        args.turns, args.warmup = 20, 3

    setup_django()
    ensure_database()
    from bench.fakellm import FakeLLM

    print_machine()
    print(
        f"# 2 uvicorn workers, Redis, PostgreSQL; N = 1, {args.turns} turns per surface "
        f"(after {args.warmup} warm-up), interleaved; load average {os.getloadavg()[0]:.1f}"
    )
    with FakeLLM() as fake:
        cells = measure(fake, args.turns, args.warmup, profile=args.profile)
    rows, targets = [], []
    for surface in SURFACES:
        cell = cells[surface]
        added, setup, relay, ttft = (
            Summary.of(cell[k]) for k in ("added", "setup", "relay", "ttft")
        )
        rows.append(
            [
                surface,
                str(added.count),
                f"{fmt_ms(added.median)} / {fmt_ms(added.p95)} / {fmt_ms(added.maximum)}",
                f"{fmt_ms(setup.median)} / {fmt_ms(setup.p95)}",
                f"{fmt_ms(relay.median)} / {fmt_ms(relay.p95)}",
                f"{fmt_ms(ttft.median)} / {fmt_ms(ttft.p95)}",
                str(len(cell["errors"])),
            ]
        )
        targets.append(
            Target(
                f"server-added TTFT p95, {surface}, N = 1", added.p95, TARGET_P95_MS, "<=", " ms"
            )
        )
        targets.append(Target(f"turns not complete, {surface}", len(cell["errors"]), 0, "==", ""))
    print(
        table(
            [
                "surface",
                "turns",
                "server-added TTFT p50 / p95 / max ms",
                "to provider p50 / p95 ms",
                "first chunk to client p50 / p95 ms",
                "TTFT p50 / p95 ms",
                "not complete",
            ],
            rows,
        )
    )
    for surface in SURFACES:
        for error in sorted(set(cells[surface]["errors"]))[:3]:
            print(f"    {surface}: {error}")
    print_targets("bench.ttft", targets)


if __name__ == "__main__":
    main()
