"""Attachments: what a turn with 4 images costs next to a turn without, and what a
history page with attachments reads.

    python -m bench.attachments [--turns 10] [--side 2048]

Turns run through the real engine (`conversations.turns.start_turn`) in this process
against the fake OpenAI server, on the bench database (`confab_bench`, or
BENCH_DATABASE_URL), with the local file storage. Measured per turn:

- bytes read from storage, and how many times each image's bytes were read: the
  images must be read once each (the ratio to their stored size is 1.0), never per
  round or per surface;
- peak Python memory (tracemalloc) during the turn, 0 vs 4 images, as a multiple of
  the 4 images' stored bytes: the turn holds each image once, plus its base64 form in
  the provider request (4/3) and the HTTP client's copy of that request;
- wall time per turn, 0 vs 4 images (the same 2-chunk reply).

And a history page (50 messages, 25 of them with 4 images each, through REST's
selector as rows and the payload): SQL statements and bytes read from storage, next
to the same page without attachments. Storage reads must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import time
import tracemalloc
from typing import Any

from bench.common import (
    QueryLog,
    Summary,
    ensure_database,
    fmt_ms,
    fmt_ratio,
    print_machine,
    setup_django,
    table,
    verdict,
)


class StorageReads:
    """Counts the bytes read through the default storage (wraps its `_open`)."""

    def __init__(self) -> None:
        self.opens: dict[str, int] = {}
        self.bytes = 0

    def install(self) -> None:
        from django.core.files.storage import default_storage

        storage = default_storage._wrapped if hasattr(default_storage, "_wrapped") else None
        if storage is None or not hasattr(storage, "_open"):
            default_storage._setup()
            storage = default_storage._wrapped
        original = storage._open
        reads = self

        def counted_open(name: str, mode: str = "rb") -> Any:
            file = original(name, mode)
            reads.opens[name] = reads.opens.get(name, 0) + 1
            file.file = _CountingReader(file.file, reads)
            return file

        storage._open = counted_open

    def clear(self) -> None:
        self.opens.clear()
        self.bytes = 0


class _CountingReader:
    """A file object that adds what is read from it to `reads.bytes`."""

    def __init__(self, inner: Any, reads: StorageReads) -> None:
        self._inner = inner
        self._reads = reads

    def read(self, *args: Any) -> bytes:
        data = self._inner.read(*args)
        self._reads.bytes += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __iter__(self) -> Any:
        return iter(self._inner)


def photo(side: int, seed: int) -> bytes:
    """A photo-like JPEG (noise over gradients: it does not compress away)."""
    from PIL import Image

    rng = random.Random(seed)
    width, height = side, side * 3 // 4
    image = Image.effect_noise((width, height), 64).convert("RGB")
    overlay = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.blend(image, overlay, 0.4)
    image = image.rotate(rng.randint(0, 3) * 90, expand=True)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92)
    return out.getvalue()


def setup_data(side: int) -> tuple[Any, Any, list[Any]]:
    from django.contrib.auth import get_user_model

    from conversations import services
    from conversations.files import services as file_services
    from conversations.models import Agent, Conversation

    user, _ = get_user_model().objects.get_or_create(username="bench-attachments")
    agent, _ = Agent.objects.update_or_create(
        slug="bench-attachments",
        defaults={
            "name": "Bench attachments",
            "system_prompt_template": "You are a benchmark assistant.",
            "model": "bench-model",
            "temperature": 0.0,
        },
    )
    Conversation.objects.filter(user=user).delete()
    for file in user.files.all():
        file_services.delete_file(file=file)
    plain = services.create_conversation(user=user, agent=agent, title="0 images")
    with_images = services.create_conversation(user=user, agent=agent, title="4 images")
    images = [
        file_services.create_file(user=user, data=photo(side, seed), name=f"photo-{seed}.jpg")
        for seed in range(4)
    ]
    return plain, with_images, images


async def one_turn(
    conversation: Any, attachments: list[int], log: QueryLog, reads: StorageReads
) -> tuple[float, int, int, dict[str, int]]:
    from conversations.turns import start_turn, wait_for_result

    log.clear()
    reads.clear()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    handle = await start_turn(
        conversation=conversation, content="What is in these?", attachments=attachments or None
    )
    result = await wait_for_result(handle, timeout=60)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - base
    assert result.ai_message.status == "complete", result.ai_message.error
    return elapsed, peak, reads.bytes, dict(reads.opens)


def history_page(conversation: Any, log: QueryLog, reads: StorageReads) -> tuple[float, int, int]:
    from conversations import inputs, selectors
    from conversations.payloads import message_payload

    log.clear()
    reads.clear()
    start = time.perf_counter()
    page = selectors.user_message_page(
        user=conversation.user,
        conversation_id=conversation.pk,
        request=inputs.HistoryRequest(size=50),
        as_rows=True,
    )
    payloads = [message_payload(message) for message in page.results]
    elapsed = time.perf_counter() - start
    assert len(payloads) == 50
    return elapsed, len(log.statements), reads.bytes


def fill_history(conversation: Any, images: list[Any] | None) -> None:
    from langchain_core.messages import AIMessage

    from conversations import services
    from conversations.files.attachments import human_message

    for index in range(25):
        file_ids = [image.pk for image in images] if images else []
        message = human_message(user=conversation.user, text=f"q{index}", file_ids=file_ids).message
        services.append_message(conversation=conversation, message=message)
        services.append_message(conversation=conversation, message=AIMessage(f"a{index}"))


def main() -> None:
    parser = argparse.ArgumentParser(description="Attachments benchmark (issue 17, item 8).")
    parser.add_argument("--turns", type=int, default=10, help="timed turns per case")
    parser.add_argument("--side", type=int, default=2048, help="images' longest side")
    args = parser.parse_args()

    setup_django(redis=True)
    ensure_database()
    from django.conf import settings

    from conversations.models import Conversation
    from tests.support.fakeopenai import FakeOpenAI, TextReply

    settings.CONFAB_HISTORY_WINDOW = 2  # each turn sees its own human message only
    plain, with_images, images = setup_data(args.side)
    stored = sum(image.size for image in images)
    log, reads = QueryLog(), StorageReads()
    reads.install()
    print_machine()
    print(
        f"# 4 JPEG photos, {images[0].width} x {images[0].height}, "
        f"{stored / 4 / 1e6:.2f} MB each as stored ({stored / 1e6:.2f} MB); "
        f"{args.turns} timed turns per case; history window 2"
    )
    tracemalloc.start()
    with FakeOpenAI() as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.CONFAB_LLM_PROVIDER = "openai"
        fake.default_step = TextReply(["Short ", "reply."])

        async def run() -> dict[str, list[tuple[float, int, int, dict[str, int]]]]:
            out: dict[str, list[tuple[float, int, int, dict[str, int]]]] = {}
            log.start()
            try:
                for label, conversation, ids in (
                    ("0 images", plain, []),
                    ("4 images", with_images, [image.pk for image in images]),
                ):
                    await one_turn(conversation, ids, log, reads)  # warm-up
                    out[label] = [
                        await one_turn(conversation, ids, log, reads) for _ in range(args.turns)
                    ]
            finally:
                log.stop()
            return out

        results = asyncio.run(run())
        body = fake.requests[-1].raw_body
    tracemalloc.stop()

    rows = []
    summaries = {}
    for label, runs in results.items():
        times = [run[0] for run in runs]
        peaks = [run[1] for run in runs]
        read_bytes = [run[2] for run in runs]
        opens = runs[-1][3]
        summary = Summary.of(times)
        summaries[label] = (summary, statistics.median(peaks), statistics.median(read_bytes))
        rows.append(
            [
                label,
                fmt_ms(summary.median),
                fmt_ms(summary.p95),
                f"{statistics.median(peaks) / 1e6:.1f}",
                f"{statistics.median(read_bytes) / 1e6:.2f}",
                f"{max(opens.values()) if opens else 0}",
            ]
        )
    print("\nOne turn (2-chunk reply)")
    print(
        table(
            [
                "case",
                "turn ms p50",
                "turn ms p95",
                "peak Python MB",
                "MB read from storage",
                "reads per image",
            ],
            rows,
        )
    )
    zero, four = summaries["0 images"], summaries["4 images"]
    read_ratio = four[2] / stored
    reads_per_image = max(results["4 images"][-1][3].values())
    extra_peak = four[1] - zero[1]
    print(
        f"\n4 images vs 0: time {fmt_ratio(four[0].median / zero[0].median)}, "
        f"peak memory +{extra_peak / 1e6:.1f} MB = {extra_peak / stored:.2f} x the images' "
        f"bytes; bytes read / stored = {read_ratio:.2f}; last request to the provider "
        f"{len(body) / 1e6:.2f} MB ({len(body) / stored:.2f} x the images' bytes)"
    )
    print(f"each image read once per turn: {verdict(reads_per_image == 1 and read_ratio <= 1.01)}")

    # History pages: plain vs with attachments.
    Conversation.objects.filter(pk__in=[plain.pk, with_images.pk]).delete()
    from conversations import services

    page_plain = services.create_conversation(
        user=plain.user, agent=plain.agent, title="page, no attachments"
    )
    page_files = services.create_conversation(
        user=plain.user, agent=plain.agent, title="page, 4 images per human message"
    )
    fill_history(page_plain, None)
    fill_history(page_files, images)
    page_rows = []
    page_results = {}
    log.start()
    try:
        for label, conversation in (("no attachments", page_plain), ("4 images", page_files)):
            history_page(conversation, log, reads)
            runs = [history_page(conversation, log, reads) for _ in range(50)]
            summary = Summary.of([run[0] for run in runs])
            page_results[label] = (summary, runs[-1][1], max(run[2] for run in runs))
            page_rows.append(
                [label, fmt_ms(summary.median), fmt_ms(summary.p95), runs[-1][1], runs[-1][2]]
            )
    finally:
        log.stop()
    print("\nA history page of 50 messages (25 human, as REST writes it)")
    print(
        table(
            ["messages", "page ms p50", "page ms p95", "SQL", "bytes read from storage"], page_rows
        )
    )
    same_sql = page_results["no attachments"][1] == page_results["4 images"][1]
    no_reads = page_results["4 images"][2] == 0
    page_ratio = page_results["4 images"][0].median / page_results["no attachments"][0].median
    print(
        f"\npage with attachments vs without: time {fmt_ratio(page_ratio)}"
        f"; same SQL and no file bytes read: {verdict(same_sql and no_reads)}"
    )
    Conversation.objects.filter(pk__in=[page_plain.pk, page_files.pk]).delete()


if __name__ == "__main__":
    main()
