"""Websockets one worker process holds: memory per open chat socket and CPU while idle.

One uvicorn worker (bench settings, Redis layer, PostgreSQL) and `--n` authenticated
chat websockets (`/ws/conversations/<id>/`, past their `ready` frame) spread over
`--conversations` conversations of one user. Measured: the worker's RSS before and
after (KiB per socket), how long opening them took, and the worker's CPU over
`--idle` seconds of holding them.

The baseline, in the same run: a bare `websockets` server process (no Django, no
Channels) holding the same number of connections: the floor of a Python websocket.

    .venv/bin/python -m bench.idle_sockets [--n 2000] [--idle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time

import websockets

from bench.common import cpu_seconds, print_machine, rss_mib, table
from tests.support.servers import free_port

BARE_SERVER = """
import asyncio, sys, websockets
async def hold(ws):
    await ws.send('{"type": "ready"}')
    await ws.wait_closed()
async def main():
    async with websockets.serve(hold, "127.0.0.1", int(sys.argv[1]), compression=None):
        await asyncio.Future()
asyncio.run(main())
"""


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def open_sockets(urls: list[str], headers: dict[str, str]) -> tuple[list, float]:
    sockets = []
    start = time.perf_counter()
    for offset in range(0, len(urls), 50):

        async def one(url: str):
            socket = await websockets.connect(
                url, additional_headers=headers, open_timeout=60, compression=None
            )
            await asyncio.wait_for(socket.recv(), 60)  # the ready frame
            return socket

        sockets.extend(await asyncio.gather(*(one(url) for url in urls[offset : offset + 50])))
    return sockets, time.perf_counter() - start


async def hold(pids: list[int], urls: list[str], headers: dict[str, str], idle: float) -> list:
    base = rss_mib(pids)
    sockets, opening = await open_sockets(urls, headers)
    await asyncio.sleep(2)
    after = rss_mib(pids)
    cpu_before = cpu_seconds(pids)
    await asyncio.sleep(idle)
    idle_cpu = cpu_seconds(pids) - cpu_before
    for socket in sockets:
        await socket.close()
    return [base, after, opening, idle_cpu]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    raise_fd_limit()

    from bench.common import ensure_database, setup_django

    setup_django(redis=True)
    ensure_database()
    from django.contrib.auth import get_user_model
    from knox.models import get_token_model

    from bench.server import start_uvicorn
    from bench.turn_cost import make_conversation

    conversations = [
        make_conversation(0, f"idle sockets {index}") for index in range(args.conversations)
    ]
    user = get_user_model().objects.get(username="bench-turn-cost")
    _, token = get_token_model().objects.create(user=user, name="bench-idle")
    headers = {"Authorization": f"Bearer {token}"}
    print_machine()
    rows = []
    with start_uvicorn(workers=1) as server:
        urls = [
            f"{server.ws_url}/ws/conversations/{conversations[i % len(conversations)].pk}/"
            for i in range(args.n)
        ]
        confab = asyncio.run(hold(server.worker_pids(), urls, headers, args.idle))
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port)])
    try:
        time.sleep(1.5)
        urls = [f"ws://127.0.0.1:{port}/"] * args.n
        floor = asyncio.run(hold([bare.pid], urls, {}, args.idle))
    finally:
        bare.kill()
        bare.wait()
    floor_kib = (floor[1] - floor[0]) * 1024 / args.n
    for name, (base, after, opening, idle_cpu) in (
        ("Confab chat websocket (1 worker)", confab),
        ("bare websockets server (baseline)", floor),
    ):
        per_socket = (after - base) * 1024 / args.n
        rows.append(
            [
                name,
                f"{args.n:,}",
                f"{base:,.0f} -> {after:,.0f}",
                f"{per_socket:,.1f}",
                f"{per_socket / floor_kib:.2f}x" if floor_kib > 0 else "-",
                f"{args.n / opening:,.0f}",
                f"{idle_cpu / args.idle * 100:.1f}%",
            ]
        )
    print(
        table(
            [
                "server",
                "sockets",
                "RSS MiB",
                "KiB per socket",
                "vs baseline",
                "opened per s",
                "CPU while idle",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
