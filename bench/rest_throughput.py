"""REST throughput: requests per second for the history endpoint at deep pages, against a
plain DRF page-number endpoint over the same rows, same server, same worker count.

    python -m bench.rest_throughput [--workers 2] [--concurrency 16] [--seconds 20]

Both endpoints are served by one live uvicorn (bench settings: `bench.urls` mounts the
baseline, bench/baseline.py) on the 1,000,000-message dataset. Each request asks for
50 messages of the 100,000-message conversation, picked at random in its deeper half
as page numbers go (pages 1,000 to 2,000; OFFSET 50,000 to 100,000), with the same rows
asked of Confab's endpoint by keyset cursor (`before=<id>`). A bounded async httpx loop
keeps `--concurrency` requests in flight for `--seconds` per endpoint, after a warm-up.
Target (issue 8): at least 20x the baseline's requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from bench.common import (
    Summary,
    active_toggles,
    cpu_seconds,
    ensure_database,
    fmt_ms,
    fmt_ratio,
    print_machine,
    setup_django,
    table,
    verdict,
)

LIMIT = 50


async def load(
    base_url: str,
    token: str,
    urls: list[str],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
) -> tuple[int, int, list[float], float]:
    """(ok responses, errors, latencies, measured seconds) of a closed loop."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(8)
    ok = errors = 0
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as client:
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + seconds

        async def worker() -> None:
            nonlocal ok, errors
            while (now := time.perf_counter()) < stop_at:
                began = now
                response = await client.get(rng.choice(urls))
                ended = time.perf_counter()
                if began < measure_from:
                    continue
                if response.status_code == 200:
                    ok += 1
                    latencies.append(ended - began)
                else:
                    errors += 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if statuses[response.status_code] == 1:
                        print(f"    {response.status_code}: {response.text[:200]}", flush=True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, errors, latencies, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="REST throughput benchmark (issue 8).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()

    setup_django()
    ensure_database()
    from knox.models import get_token_model

    from bench.dataset import load as load_dataset
    from bench.server import start_uvicorn
    from conversations.models import Conversation, ConversationMessage

    dataset = load_dataset()
    conversation = Conversation.objects.get(pk=dataset.big_conversation_id)
    ids = list(
        ConversationMessage.objects.filter(conversation_id=conversation.pk)
        .order_by("id")
        .values_list("id", flat=True)
    )
    pages = range(len(ids) // LIMIT // 2, len(ids) // LIMIT + 1)
    base = f"/api/v1/conversations/{conversation.pk}/messages/"
    # Page p holds rows (p-1)*50 .. p*50-1; Confab's page before ids[p*50] holds the same.
    confab_urls = [
        f"{base}?limit={LIMIT}&before={ids[page * LIMIT]}" if page * LIMIT < len(ids) else base
        for page in pages
    ]
    baseline_urls = [
        f"/bench/baseline/conversations/{conversation.pk}/messages/?page={page}" for page in pages
    ]
    _, token = get_token_model().objects.create(user=conversation.user, name="bench-throughput")

    print_machine()
    print(
        f"# {dataset.total_messages:,} messages; pages {pages.start:,}-{pages.stop - 1:,} of "
        f"{len(ids) // LIMIT:,} (limit {LIMIT}); uvicorn --workers {args.workers}; "
        f"{args.concurrency} requests in flight for {args.seconds:g} s per endpoint; "
        f"bench toggles: {active_toggles()}"
    )
    results: dict[str, Any] = {}
    with start_uvicorn(workers=args.workers) as server:
        for name, urls in (
            ("Confab keyset (GET messages/?before=)", confab_urls),
            ("DRF PageNumberPagination (?page=)", baseline_urls),
        ):
            cpu_before = cpu_seconds(server.pids())
            ok, errors, latencies, seconds = asyncio.run(
                load(
                    server.url,
                    token,
                    urls,
                    concurrency=args.concurrency,
                    seconds=args.seconds,
                    warmup=args.warmup,
                )
            )
            cpu = cpu_seconds(server.pids()) - cpu_before
            results[name] = (ok, errors, Summary.of(latencies), seconds, cpu)

    rows = []
    for name, (ok, errors, latency, seconds, cpu) in results.items():
        rows.append(
            [
                name,
                f"{ok / seconds:,.1f}",
                fmt_ms(latency.median),
                fmt_ms(latency.p99),
                str(errors),
                f"{cpu / max(ok, 1) * 1000:.1f}",
            ]
        )
    print()
    print(
        table(
            [
                "endpoint",
                "requests/s",
                "latency p50 ms",
                "latency p99 ms",
                "errors",
                "server CPU ms/request",
            ],
            rows,
        )
    )
    (confab, baseline) = results.values()
    ratio = (confab[0] / confab[3]) / max(baseline[0] / baseline[3], 1e-9)
    print("\nTarget")
    print(
        table(
            ["check", "ratio", "target", "result"],
            [
                [
                    "Confab requests/s vs DRF page numbers",
                    fmt_ratio(ratio),
                    ">= 20x",
                    verdict(ratio >= 20),
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
