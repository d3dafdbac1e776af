"""PostgreSQL CPU per turn: how many turns per second one PostgreSQL core carries.

Starts a private PostgreSQL cluster (initdb on a free port, tests/support/daemons.py),
so that every CPU tick of its processes is this benchmark's (the machine's shared
cluster serves other work), migrates it, and runs turns through the real engine
(`conversations.turns.start_turn`, this process, the fake OpenAI server) in
`--conversations` conversations of `--history` stored messages, `--concurrency` at a
time. PostgreSQL's CPU is read from /proc: every process of the cluster plus what the
postmaster has reaped (cutime/cstime), before and after.

The baseline, in the same run and on the same connection pool: `SELECT 1` round trips,
as many as the turns' statements: the PostgreSQL CPU of the same number of trivial
statements. The ratio says how much more a turn's statements cost than trivial ones.

    .venv/bin/python -m bench.pg_turn_cpu [--turns 300] [--concurrency 20]
        [--stream-chunks 2] [--chunk-delay 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from bench.common import CLOCK_TICKS, QueryLog, print_machine, process_tree, table


def cluster_cpu(postmaster: int) -> float:
    """CPU seconds of the cluster so far: live processes and reaped children."""
    total = 0.0
    for pid in process_tree(postmaster):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if pid == postmaster:
            total += int(fields[13]) + int(fields[14])  # children it has waited for
    return total / CLOCK_TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--stream-chunks", type=int, default=2)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    args = parser.parse_args()

    from tests.support.daemons import start_primary

    primary = start_primary()
    try:
        primary.sql("CREATE DATABASE confab_bench")
        postmaster = int((primary.directory / "data" / "postmaster.pid").read_text().split()[0])
        os.environ["BENCH_DATABASE_URL"] = primary.url("confab_bench")
        os.environ["DB_POOL_MAX_SIZE"] = str(args.concurrency + 10)
        from bench.common import ensure_database, setup_django

        setup_django(redis=True)
        ensure_database()
        run(args, postmaster)
    finally:
        primary.destroy()


def run(args: argparse.Namespace, postmaster: int) -> None:
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.db import connection

    from bench.turn_cost import make_conversation
    from conversations.turns import start_turn, wait_for_result
    from tests.support.fakeopenai import FakeOpenAI, TextReply

    conversations = [
        make_conversation(args.history, f"pg cpu {index}") for index in range(args.concurrency)
    ]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print_machine()
    log = QueryLog()
    with FakeOpenAI() as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.CONFAB_LLM_PROVIDER = "openai"
        fake.default_step = TextReply(["tok "] * args.stream_chunks, chunk_delay=args.chunk_delay)

        async def worker(conversation, turns: int) -> None:
            for index in range(turns):
                handle = await start_turn(conversation=conversation, content=f"turn {index}")
                result = await wait_for_result(handle, timeout=120)
                assert result.ai_message.status == "complete", result.ai_message.error

        async def turns(count: int) -> None:
            per = count // len(conversations)
            await asyncio.gather(*(worker(c, per) for c in conversations))

        def select_ones(count: int) -> None:
            with connection.cursor() as cursor:
                for _ in range(count):
                    cursor.execute("SELECT 1")

        async def measure() -> tuple[float, float, int, float, float]:
            await turns(len(conversations))  # warm-up: pools, plans, caches
            log.start()
            log.clear()
            before, start = cluster_cpu(postmaster), time.perf_counter()
            await turns(args.turns)
            turn_cpu, wall = cluster_cpu(postmaster) - before, time.perf_counter() - start
            statements = len(log.statements)
            log.stop()
            before = cluster_cpu(postmaster)
            await sync_to_async(select_ones, thread_sensitive=False)(statements)
            trivial_cpu = cluster_cpu(postmaster) - before
            return turn_cpu, wall, statements, trivial_cpu, args.turns

        turn_cpu, wall, statements, trivial_cpu, count = asyncio.run(measure())
    count = (count // len(conversations)) * len(conversations)
    per_turn = turn_cpu / count
    rows = [
        [
            f"turn ({args.stream_chunks}-chunk reply, {args.chunk_delay * 1000:g} ms apart, "
            f"{args.history} stored messages)",
            f"{statements / count:.1f}",
            f"{per_turn * 1000:.2f}",
            f"{1 / per_turn:,.0f}" if per_turn else "-",
            f"{per_turn / (trivial_cpu / count) if trivial_cpu else float('nan'):.2f}x",
        ],
        [
            "baseline: SELECT 1 x the same statements",
            f"{statements / count:.1f}",
            f"{trivial_cpu / count * 1000:.2f}",
            f"{count / trivial_cpu:,.0f}" if trivial_cpu else "-",
            "1.00x",
        ],
    ]
    print(
        f"# {count} turns, {args.concurrency} at a time, {wall:.1f} s wall, "
        f"{count / wall:.1f} turns/s (client and server in one process on a shared machine)"
    )
    print(
        table(
            ["what", "statements per turn", "PG CPU ms per turn", "per PG core /s", "vs baseline"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
