"""Memory and time of `GET /api/v1/export/` (the streamed zip) for a user with
`--messages` messages, against a naive export in the same run.

Migrates a scratch database (`confab_bench_export`), stores the messages with SQL
(`--conversations` conversations, alternating human/AI rows in the seed's
`{"_type", "_value"}` shape), then:

1. streamed: the real request through Django's ASGI application (authentication,
   the view, `StreamingHttpResponse`), every body chunk counted and dropped as a
   server would send it;
2. baseline: every row read into memory (`.values()`), one `json.dumps` of it all, and
   that zipped into a `BytesIO` — what an export without streaming holds.

Peak memory is Python's allocations (tracemalloc, reset before each variant), and the
process's peak RSS growth (VmHWM, reset between variants where the kernel allows).

    .venv/bin/python -m bench.export [--messages 100000] [--conversations 20]
        [--human-chars 200] [--ai-chars 1200] [--drop]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import time
import tracemalloc
import zipfile
from typing import Any

import psycopg

from bench.common import drop_database, fresh_database, print_machine, table

DATABASE = "confab_bench_export"


def rss_peak_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def reset_rss_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def load(base: str, user_id: int, agent_id: int, args: argparse.Namespace) -> None:
    per = args.messages // args.conversations
    with psycopg.connect(f"{base}/{DATABASE}", autocommit=True) as conn:
        for index in range(args.conversations):
            (conversation_id,) = conn.execute(
                """
                INSERT INTO conversations_conversation
                    (user_id, agent_id, context, title, title_source, model, activity_at,
                     message_count, cancel_requested, pinned, created_at, updated_at)
                VALUES (%s, %s, '{}', %s, 'user', '', now(), %s, false, false, now(), now())
                RETURNING id
                """,
                [user_id, agent_id, f"Conversation {index}", per],
            ).fetchone()
            conn.execute(
                """
                INSERT INTO conversations_conversationmessage
                    (conversation_id, user_id, role, content, text, status, model, usage,
                     created_at, updated_at)
                SELECT %(c)s, %(u)s, role, jsonb_build_object(
                           '_type', CASE role WHEN 'human' THEN 'HumanMessage'
                                    ELSE 'AIMessage' END,
                           '_value', jsonb_build_object(
                               'content', body, 'type', role, 'id', 'run-' || md5(n::text),
                               'additional_kwargs', '{}'::jsonb,
                               'response_metadata', '{}'::jsonb)),
                       body, 'complete', CASE role WHEN 'ai' THEN 'gpt-4o-mini' ELSE '' END,
                       CASE role WHEN 'ai' THEN jsonb_build_object(
                           'input_tokens', 812, 'output_tokens', 301, 'total_tokens', 1113)
                           ELSE NULL END,
                       now(), now()
                FROM (
                    SELECT n, CASE WHEN n %% 2 = 0 THEN 'human' ELSE 'ai' END AS role,
                           left(repeat(md5(n::text) || ' ' || md5((n + 1)::text) || ' ', 64),
                                CASE WHEN n %% 2 = 0 THEN %(h)s ELSE %(a)s END) AS body
                    FROM generate_series(0, %(rows)s - 1) AS n
                ) AS generated
                """,
                {
                    "c": conversation_id,
                    "u": user_id,
                    "rows": per,
                    "h": args.human_chars,
                    "a": args.ai_chars,
                },
            )
        conn.execute("VACUUM ANALYZE conversations_conversationmessage")


async def streamed_through_asgi(token: str) -> tuple[int, int]:
    """The export request through Django's ASGI app; (body bytes, body chunks)."""
    from django.core.asgi import get_asgi_application

    application = get_asgi_application()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/export/",
        "raw_path": b"/api/v1/export/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    received = False
    size = chunks = 0
    status = None

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal size, chunks, status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))
            chunks += 1

    await application(scope, receive, send)
    assert status == 200, status
    return size, chunks


def naive_export(user_id: int) -> int:
    """Everything in memory: rows, one JSON string, the zip in a BytesIO."""
    from conversations.models import Conversation, ConversationMessage

    conversations = list(Conversation.objects.filter(user_id=user_id).values())
    messages = list(ConversationMessage.objects.filter(user_id=user_id).order_by("id").values())
    document = json.dumps(
        {"conversations": conversations, "messages": messages}, default=str, ensure_ascii=False
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr("export.json", document)
    return len(buffer.getvalue())


def measure(label: str, run: Any) -> list[Any]:
    gc.collect()
    reset = reset_rss_peak()
    rss_before = rss_peak_kib()
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    size = run()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = (rss_peak_kib() - rss_before) / 1024
    return [
        label,
        f"{size / 2**20:,.1f}",
        f"{seconds:,.1f}",
        f"{peak / 2**20:,.1f}",
        f"{rss_growth:,.1f}" + ("" if reset else " (not reset)"),
        peak,
        seconds,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--human-chars", type=int, default=200)
    parser.add_argument("--ai-chars", type=int, default=1200)
    parser.add_argument("--drop", action="store_true")
    args = parser.parse_args()
    base = fresh_database(DATABASE)
    from django.contrib.auth import get_user_model
    from knox.models import get_token_model

    from conversations.models import Agent

    user = get_user_model().objects.create_user(username="bench-export", password="x" * 16)
    agent = Agent.objects.create(slug="bench-export", name="Bench", system_prompt_template="Hi.")
    _, token = get_token_model().objects.create(user=user, name="bench")
    load(base, user.pk, agent.pk, args)
    # Warm up (imports, URL resolver, first connection) on another user's small export,
    # so neither variant pays for them.
    spare = get_user_model().objects.create_user(username="bench-warm-up", password="x" * 16)
    _, spare_token = get_token_model().objects.create(user=spare, name="bench")
    asyncio.run(streamed_through_asgi(spare_token))
    naive_export(spare.pk)
    print_machine()

    chunk_count = 0

    def streamed() -> int:
        nonlocal chunk_count
        size, chunk_count = asyncio.run(streamed_through_asgi(token))
        return size

    rows = [
        measure("streamed zip (GET /api/v1/export/ via ASGI)", streamed),
        measure("baseline: rows + json.dumps + zip in memory", lambda: naive_export(user.pk)),
    ]
    stream, naive = rows
    print(
        f"# {args.messages:,} messages in {args.conversations} conversations "
        f"(human {args.human_chars} chars, AI {args.ai_chars}); the streamed body came in "
        f"{chunk_count:,} chunks"
    )
    print(
        table(
            ["export", "zip MiB", "seconds", "peak Python MiB", "peak RSS growth MiB"],
            [row[:5] for row in rows],
        )
    )
    print(
        f"peak Python memory: streamed / baseline = {stream[5] / naive[5]:.3f}; "
        f"time: streamed / baseline = {stream[6] / naive[6]:.2f}"
    )
    if args.drop:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
