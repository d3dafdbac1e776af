"""Idle websockets two workers hold (issue 21, target 4): memory, connect storm, delivery.

    python -m bench.idle_sockets [--n 10000] [--workers 2] [--idle 10] [--quick]

2 uvicorn workers (bench settings, Redis layer, PostgreSQL) and `--n` authenticated
websockets opened as one connect storm (`--concurrency` handshakes in flight at once),
half chat websockets (`/ws/conversations/<id>/`, past their `ready` frame) and half
GraphQL (graphql-transport-ws, `connection_init` with the token, then subscribed to
`conversationEvents` of the user's conversation, as the web app's socket is). The
sockets belong to `--n / 20` users, 20 each: the product's per-user cap
(CONFAB_WS_MAX_PER_USER = 20) is kept, the benchmark's users just are many.

Measured: the workers' RSS before and after (all workers; bytes per socket), the
storm's duration and failures, the workers' CPU over `--idle` seconds of holding them,
and then one turn on the first user's conversation while every socket stays open: its
chat and GraphQL sockets are watchers among the 10,000, and each chunk's relay latency
(fake provider send time -> the watcher has it) is measured.

The baseline, in the same run: a bare `websockets` server process (no Django, no
Channels) holding the same number of connections: the floor of a Python websocket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.protocol import State

from bench.common import (
    Summary,
    Target,
    cpu_seconds,
    fmt_ms,
    print_machine,
    print_targets,
    rss_mib,
    start_spy,
    stop_spy,
    table,
)
from tests.support.servers import free_port

PER_USER = 20
OPEN = State.OPEN
GIB_MIB = 1024.0
BARE_SERVER = """
import asyncio, sys, websockets
async def hold(ws):
    await ws.send('{"type": "ready"}')
    await ws.wait_closed()
async def main():
    async with websockets.serve(hold, "127.0.0.1", int(sys.argv[1]), compression=None,
                                backlog=4096):
        await asyncio.Future()
asyncio.run(main())
"""
EVENTS = """
subscription Events($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename
    ... on MessageDelta { messageId index offset delta }
    ... on MessageCompleted { message { id role status text } }
  }
}
"""


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Storm:
    sockets: list[Any] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    dropped: int = 0  # opened, then closed by the server while held


async def open_chat(ws_url: str, conversation_id: int, token: str) -> Any:
    socket = await websockets.connect(
        f"{ws_url}/ws/conversations/{conversation_id}/",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=120,
        compression=None,
        ping_interval=None,
        max_size=None,
    )
    frame = json.loads(await asyncio.wait_for(socket.recv(), 120))
    if frame.get("type") != "ready":
        raise RuntimeError(f"chat socket: {frame}")
    return socket


async def open_graphql(ws_url: str, conversation_id: int, token: str) -> Any:
    socket = await websockets.connect(
        f"{ws_url}/graphql/",
        subprotocols=["graphql-transport-ws"],
        open_timeout=120,
        compression=None,
        ping_interval=None,
        max_size=None,
    )
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
    await socket.send(json.dumps(init))
    ack = json.loads(await asyncio.wait_for(socket.recv(), 120))
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"graphql socket: {ack}")
    payload = {"query": EVENTS, "variables": {"id": str(conversation_id)}}
    await socket.send(json.dumps({"id": "events", "type": "subscribe", "payload": payload}))
    first = json.loads(await asyncio.wait_for(socket.recv(), 120))  # the snapshot
    if first.get("type") != "next":
        raise RuntimeError(f"graphql subscribe: {first}")
    return socket


async def open_bare(url: str) -> Any:
    socket = await websockets.connect(
        url, open_timeout=120, compression=None, ping_interval=None, max_size=None
    )
    await asyncio.wait_for(socket.recv(), 120)
    return socket


async def storm(openers: list[Any], concurrency: int) -> Storm:
    """Open every socket, `concurrency` handshakes in flight at once; order kept."""
    result = Storm()
    gate = asyncio.Semaphore(concurrency)

    async def one(opener: Any) -> Any:
        async with gate:
            try:
                return await opener()
            except Exception as exc:  # counted: the target is 0 failures
                result.failures.append(f"{type(exc).__name__}: {exc}"[:160])
                return None

    start = time.perf_counter()
    result.sockets = list(await asyncio.gather(*(one(o) for o in openers)))
    result.seconds = time.perf_counter() - start
    return result


async def watch(
    server: Any, fake: Any, user: Any, chat: Any, graphql: Any
) -> dict[str, list[float]]:
    """One turn on `user`'s conversation over REST; its chat and GraphQL sockets (held
    among all the others) read the deltas. Returns each watcher's relay latency per chunk
    (a watcher that lost its socket has fewer)."""
    import httpx

    from bench.streaming import CHUNK_RE

    received: dict[str, dict[int, float]] = {"chat": {}, "graphql": {}}

    def record(kind: str, text_so_far: str, now: float) -> None:
        for j in range(len(received[kind]), len(text_so_far) // 4):
            received[kind][j] = now

    async def read_chat() -> None:
        text = ""
        async for raw in chat:
            frame = json.loads(raw)
            if frame["type"] == "message.delta":
                text += frame["delta"]
                record("chat", text, time.time())
            elif frame["type"] == "message.completed" and frame["message"]["role"] == "ai":
                return

    async def read_graphql() -> None:
        text = ""
        async for raw in graphql:
            event = json.loads(raw)["payload"]["data"]["conversationEvents"]
            if event["__typename"] == "MessageDelta":
                text += event["delta"]
                record("graphql", text, time.time())
            elif event["__typename"] == "MessageCompleted" and event["message"]["role"] == "AI":
                return

    readers = [asyncio.ensure_future(read_chat()), asyncio.ensure_future(read_graphql())]
    async with httpx.AsyncClient(timeout=120) as client:
        response = await client.post(
            f"{server.url}/api/v1/conversations/{user.conversation_id}/messages/",
            json={"content": user.content},
            headers={"Authorization": f"Bearer {user.token}"},
        )
        response.raise_for_status()
    try:
        await asyncio.wait_for(asyncio.gather(*readers), 60)
    except Exception as exc:  # a watcher's socket closed: its missing chunks show it
        print(f"    watcher failed: {type(exc).__name__}: {exc}")
    sent: dict[int, float] = {}
    for record_ in fake.call("GET", "/_fake/requests"):
        for chunk in record_.get("chunks") or []:
            choices = chunk.get("choices") or []
            piece = (choices[0].get("delta") or {}).get("content") if choices else None
            match = CHUNK_RE.match(piece or "")
            if match:
                sent[int(match.group(1))] = chunk["x_sent_at"]
    return {
        kind: [at - sent[j] for j, at in times.items() if j in sent]
        for kind, times in received.items()
    }


async def close_all(sockets: list[Any]) -> None:
    async def close(socket: Any) -> None:
        try:
            await asyncio.wait_for(socket.close(), 10)
        except Exception:  # the server may already be going away
            return

    gate = asyncio.Semaphore(500)

    async def bounded(socket: Any) -> None:
        async with gate:
            await close(socket)

    await asyncio.gather(*(bounded(s) for s in sockets if s is not None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="sockets, half chat, half GraphQL")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds held for idle CPU")
    parser.add_argument("--profile", action="store_true", help="py-spy worker 1 in the storm")
    parser.add_argument(
        "--healthcheck", type=int, default=30, help="uvicorn --timeout-worker-healthcheck"
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-server baseline")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 sockets, projected to 10,000; < 3 min"
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.idle = 2000, 3.0
    n = args.n - args.n % 2
    limit = raise_fd_limit()
    if limit < n + 500:
        sys.exit(f"ulimit -n is {limit}: {n} sockets need about {n + 500} descriptors")

    from bench.common import ensure_database, setup_django

    setup_django(redis=True)
    ensure_database()
    from bench.fakellm import FakeLLM
    from bench.server import start_uvicorn
    from bench.streaming import chunk_texts, prepare_turns

    users = prepare_turns(max(1, n // PER_USER), 20, prefix="bench-idle")
    print_machine()
    print(
        f"# {args.workers} uvicorn workers, Redis layer, PostgreSQL; {n:,} sockets "
        f"({n // 2:,} chat + {n // 2:,} GraphQL subscribed) of {len(users)} users "
        f"({PER_USER} each, the product's cap); {args.concurrency} handshakes in flight; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    openers = []
    for index in range(n):
        user = users[(index // 2) % len(users)]
        kind = open_chat if index % 2 == 0 else open_graphql
        openers.append((kind, user))

    with FakeLLM() as fake:
        fake.call("POST", "/_fake/reset")
        step = {"type": "text", "deltas": chunk_texts(20), "chunk_delay": 0.02}
        fake.call("POST", "/_fake/script", [step])
        env = {
            # The product's cap (bench/settings.py raises it for the other benchmarks).
            "CONFAB_WS_MAX_PER_USER": str(PER_USER),
            "OPENAI_BASE_URL": fake.base_url,
            "CONFAB_LLM_PROVIDER": "openai",
            "CONFAB_LLM_MAX_RETRIES": "0",
            "CONFAB_REDIS_PREFIX": f"confab-bench-idle-{os.getpid()}",
        }
        # docs/deploy.md's production flag: under a connect storm a busy worker answered
        # uvicorn's 5 s health check too late and was killed with its sockets.
        extra = ["--timeout-worker-healthcheck", str(args.healthcheck)]
        with start_uvicorn(workers=args.workers, env=env, extra_args=extra) as server:
            pids = server.worker_pids()
            # One request per worker first: what every worker loads on its first request
            # is not a socket's memory.
            asyncio.run(warm(server, users))
            time.sleep(1)
            base = rss_mib(pids)
            base_each = [rss_mib([pid]) for pid in pids]

            async def run() -> tuple[Storm, float, float, dict[str, list[float]]]:
                out = "/tmp/confab-bench-spy-idle-storm.txt"
                spy = start_spy(pids[0], out) if args.profile else None
                result = await storm(
                    [
                        (lambda k=kind, u=user: k(server.ws_url, u.conversation_id, u.token))
                        for kind, user in openers
                    ],
                    args.concurrency,
                )
                if spy is not None:
                    stop_spy(spy)
                await asyncio.sleep(3)
                after = rss_mib(pids)
                cpu_before = cpu_seconds(pids)
                await asyncio.sleep(args.idle)
                idle_cpu = cpu_seconds(pids) - cpu_before
                still_open = sum(1 for s in result.sockets if s is not None and s.state == OPEN)
                result.dropped = n - len(result.failures) - still_open
                relay: dict[str, list[float]] = {"chat": [], "graphql": []}
                # Watchers: the chat and GraphQL sockets of the first user with both open.
                for index in range(0, n, 2):
                    chat, graphql = result.sockets[index], result.sockets[index + 1]
                    if all(s is not None and s.state == OPEN for s in (chat, graphql)):
                        user = openers[index][1]
                        relay = await watch(server, fake, user, chat, graphql)
                        break
                await close_all(result.sockets)
                return result, after, idle_cpu, relay

            confab, after, idle_cpu, relay = asyncio.run(run())
            after_each = [rss_mib([pid]) for pid in pids]

    floor_kib = float("nan")
    bare_row = None
    if not args.no_bare:
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
        try:
            time.sleep(1.5)
            bare_base = rss_mib([bare.pid])

            async def run_bare() -> tuple[Storm, float]:
                url = f"ws://127.0.0.1:{port}/"
                result = await storm([lambda: open_bare(url)] * n, args.concurrency)
                await asyncio.sleep(3)
                held = rss_mib([bare.pid])
                await close_all(result.sockets)
                return result, held

            bare_storm, bare_after = asyncio.run(run_bare())
        finally:
            bare.kill()
            bare.wait()
        floor_kib = (bare_after - bare_base) * 1024 / n
        bare_row = [
            "bare websockets server (baseline, 1 process)",
            f"{n - len(bare_storm.failures):,}",
            f"{bare_base:,.0f} -> {bare_after:,.0f}",
            f"{floor_kib:,.1f}",
            "1.00x",
            f"{bare_storm.seconds:.1f}",
            str(len(bare_storm.failures)),
            "-",
        ]

    opened = n - len(confab.failures)
    per_socket_kib = (after - base) * 1024 / max(opened, 1)
    rows = [
        [
            f"Confab, {args.workers} workers (chat + GraphQL)",
            f"{opened:,}",
            f"{base:,.0f} -> {after:,.0f} ("
            + " + ".join(f"{b:,.0f}->{a:,.0f}" for b, a in zip(base_each, after_each, strict=True))
            + ")",
            f"{per_socket_kib:,.1f}",
            f"{per_socket_kib / floor_kib:.2f}x" if floor_kib == floor_kib else "-",
            f"{confab.seconds:.1f}",
            str(len(confab.failures)),
            f"{idle_cpu / args.idle * 100:.1f}%",
        ]
    ]
    if bare_row:
        rows.append(bare_row)
    print(
        table(
            [
                "server",
                "sockets open",
                "RSS MiB before -> after (per worker)",
                "KiB per socket",
                "vs baseline",
                "storm s",
                "failures",
                "CPU while idle (1 core = 100%)",
            ],
            rows,
        )
    )
    kinds: dict[str, int] = {}
    for failure in confab.failures:
        kinds[failure] = kinds.get(failure, 0) + 1
    for kind, count in sorted(kinds.items(), key=lambda item: -item[1])[:5]:
        print(f"    {count} x {kind}")
    watchers = {kind: Summary.of(values) for kind, values in relay.items()}
    for kind, summary in watchers.items():
        print(
            f"watcher ({kind}) among them: {summary.count}/20 chunks, relay p50 / p99 "
            f"{fmt_ms(summary.median)} / {fmt_ms(summary.p99)} ms"
        )
    print(
        f"sockets per GiB of worker RSS at this rate: {GIB_MIB * 1024 / per_socket_kib:,.0f}"
        if per_socket_kib > 0
        else ""
    )
    scale = 10_000 / n
    targets = [
        Target(f"workers' RSS with {n:,} sockets (MiB)", after, GIB_MIB, "<", " MiB"),
        Target(f"connect storm of {n:,} sockets (s)", confab.seconds, 60.0, "<=", " s"),
        Target("failed connections", len(confab.failures), 0, "==", ""),
        Target("sockets dropped while held", confab.dropped, 0, "==", ""),
        Target("watcher relay p99, chat (ms)", watchers["chat"].p99, 100.0, "<=", " ms"),
        Target("watcher relay p99, GraphQL (ms)", watchers["graphql"].p99, 100.0, "<=", " ms"),
        Target(
            "watchers got every chunk",
            watchers["chat"].count + watchers["graphql"].count,
            40,
            "==",
            "",
        ),
        Target("KiB per socket vs bare websockets", per_socket_kib / floor_kib, 0, "info"),
    ]
    if n != 10_000:
        targets.insert(
            2,
            Target(
                "connect storm projected to 10,000 sockets (s)",
                confab.seconds * scale,
                60.0,
                "<=",
                " s",
            ),
        )
        targets.insert(
            1,
            Target(
                "workers' RSS projected to 10,000 sockets (MiB)",
                base + (after - base) * scale,
                GIB_MIB,
                "<",
                " MiB",
            ),
        )
    print_targets("bench.idle_sockets", targets)


async def warm(server: Any, users: list[Any]) -> None:
    """A few sockets and closes, so each worker has imported and connected what it
    needs before the base RSS is read."""
    sockets = []
    for user in users[:4]:
        sockets.append(await open_chat(server.ws_url, user.conversation_id, user.token))
        sockets.append(await open_graphql(server.ws_url, user.conversation_id, user.token))
    await close_all(sockets)


if __name__ == "__main__":
    main()
