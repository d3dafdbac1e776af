"""Per-turn cost: SQL and time of one turn in a conversation of 10 vs 100,000 messages,
and the database writes of one streamed reply.

    python -m bench.turn_cost [--turns 10] [--stream-chunks 200] [--chunk-delay 0.01]

Turns run through the real engine (`conversations.turns.start_turn`) in this process
against the fake OpenAI server, on the bench database. Every SQL statement of the turn
is counted on whatever thread runs it.

- Turn SQL and time at 10 vs 100,000 stored messages: the engine sends a bounded window
  (CONFAB_HISTORY_WINDOW), so both must be equal in statements and close in time. The
  baseline is the seed's `aget_previous_messages`, which loads and decodes the whole
  history on every turn.
- Writes per streamed reply: UPDATEs of the message (partial text) and of the
  conversation (heartbeat) while a reply of `--stream-chunks` tokens streams; the
  baseline is one write per token.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
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

# (label, stored messages, messages of another conversation stored after them): the
# third is a conversation that sat idle while the rest of the table grew, which is
# where an ordered read that walks the primary key would pay for every newer message.
CASES = (
    ("10", 10, 0),
    ("100,000", 100_000, 0),
    ("100,000, then 100,000 newer elsewhere", 100_000, 100_000),
)


def make_conversation(size: int, title: str) -> Any:
    """A conversation of `size` alternating human/AI messages (INSERT ... SELECT)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from conversations.models import Agent, Conversation

    user, _ = get_user_model().objects.get_or_create(username="bench-turn-cost")
    agent, _ = Agent.objects.update_or_create(
        slug="bench-turn-cost",
        defaults={
            "name": "Bench turn cost",
            "system_prompt_template": "You are a benchmark assistant.",
            "model": "bench-model",
            "temperature": 0.0,
        },
    )
    Conversation.objects.filter(user=user, title=title).delete()
    conversation = Conversation.objects.create(user=user, agent=agent, title=title)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO conversations_conversationmessage
                (conversation_id, user_id, role, content, text, status, model, created_at,
                 updated_at)
            SELECT %s, %s,
                   CASE WHEN n %% 2 = 0 THEN 'human' ELSE 'ai' END,
                   jsonb_build_object(
                       '_type', CASE WHEN n %% 2 = 0 THEN 'HumanMessage' ELSE 'AIMessage' END,
                       '_value', jsonb_build_object(
                           'content', 'message ' || n,
                           'type', CASE WHEN n %% 2 = 0 THEN 'human' ELSE 'ai' END,
                           'additional_kwargs', '{}'::jsonb,
                           'response_metadata', '{}'::jsonb)),
                   'message ' || n, 'complete', '', now(), now()
              FROM generate_series(0, %s - 1) AS n
            """,
            [conversation.pk, user.pk, size],
        )
    Conversation.objects.filter(pk=conversation.pk).update(message_count=size)
    return Conversation.objects.select_related("agent").get(pk=conversation.pk)


async def one_turn(conversation: Any, content: str, log: QueryLog) -> tuple[float, list[str]]:
    from conversations.turns import start_turn, wait_for_result

    log.clear()
    start = time.perf_counter()
    handle = await start_turn(conversation=conversation, content=content)
    result = await wait_for_result(handle, timeout=60)
    elapsed = time.perf_counter() - start
    assert result.ai_message.status == "complete", result.ai_message.error
    return elapsed, list(log.statements)


def kinds(statements: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sql in statements:
        word = sql.lstrip().split(None, 1)[0].upper()
        counts[word] = counts.get(word, 0) + 1
    return counts


def seed_history_load(conversation: Any) -> float:
    """The seed's per-turn history load: every row, decoded (the baseline)."""
    from conversations.codec import decode_message
    from conversations.models import ConversationMessage

    async def load() -> None:
        rows = ConversationMessage.objects.filter(conversation_id=conversation.pk).order_by("id")
        [decode_message(row.content) async for row in rows]

    start = time.perf_counter()
    asyncio.run(load())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="Per-turn cost benchmark (issue 8).")
    parser.add_argument("--turns", type=int, default=10, help="timed turns per size")
    parser.add_argument("--stream-chunks", type=int, default=200)
    parser.add_argument("--chunk-delay", type=float, default=0.01)
    args = parser.parse_args()

    setup_django(redis=True)
    ensure_database()
    from django.conf import settings
    from django.db import connection

    from conversations.models import Conversation
    from tests.support.fakeopenai import FakeOpenAI, TextReply

    conversations, others = {}, []
    for label, size, newer_elsewhere in CASES:
        conversations[label] = make_conversation(size, f"turn cost {label}")
        if newer_elsewhere:
            others.append(make_conversation(newer_elsewhere, f"turn cost, after {label}"))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_conversationmessage")  # as autovacuum would
    log = QueryLog()
    print_machine()
    print(
        f"# history window {settings.CONFAB_HISTORY_WINDOW}, partial save every "
        f"{settings.CONFAB_PARTIAL_SAVE_SECONDS} s, delta flush every "
        f"{settings.CONFAB_DELTA_FLUSH_SECONDS} s; {args.turns} timed turns per size"
    )
    with FakeOpenAI() as fake:
        settings.OPENAI_BASE_URL = fake.base_url
        settings.CONFAB_LLM_PROVIDER = "openai"
        fake.default_step = TextReply(["Short ", "reply."])

        async def run() -> dict[str, tuple[list[float], list[list[str]]]]:
            out = {}
            log.start()
            try:
                for label, conversation in conversations.items():
                    await one_turn(conversation, "warm-up", log)
                    times, statements = [], []
                    for index in range(args.turns):
                        elapsed, sql = await one_turn(conversation, f"turn {index}", log)
                        times.append(elapsed)
                        statements.append(sql)
                    out[label] = (times, statements)
                # Writes per streamed reply: a long reply, streamed with delays.
                fake.reply_text(["tok "] * args.stream_chunks, chunk_delay=args.chunk_delay)
                elapsed, sql = await one_turn(conversations["10"], "stream a lot", log)
                out["stream"] = ([elapsed], [sql])
            finally:
                log.stop()
            return out

        results = asyncio.run(run())

    baseline = {
        label: seed_history_load(conversation) for label, conversation in conversations.items()
    }
    # Leave the history benchmark's data as it was (1,000,000 messages): these
    # conversations are this run's own.
    mine = [c.pk for c in [*conversations.values(), *others]]
    Conversation.objects.filter(pk__in=mine).delete()
    rows = []
    per_case = {}
    for label, _, _ in CASES:
        times, statements = results[label]
        counts = [len(sql) for sql in statements]
        summary = Summary.of(times)
        per_case[label] = (summary, counts, kinds(statements[-1]))
        rows.append(
            [
                label,
                f"{statistics.median(counts):g} (min {min(counts)}, max {max(counts)})",
                ", ".join(f"{k} {v}" for k, v in sorted(kinds(statements[-1]).items())),
                fmt_ms(summary.median),
                fmt_ms(summary.p95),
                fmt_ms(baseline[label] * 1000),
            ]
        )
    print("\nOne turn (2-chunk reply): SQL statements and wall time")
    print(
        table(
            [
                "stored messages",
                "SQL per turn",
                "by kind (last turn)",
                "turn ms p50",
                "turn ms p95",
                "seed: load whole history ms",
            ],
            rows,
        )
    )
    small, big, idle = (per_case[label] for label, _, _ in CASES)
    time_ratio = big[0].median / small[0].median
    idle_ratio = idle[0].median / small[0].median
    seed_ratio = baseline["100,000"] / baseline["10"]
    same_sql = len(set(small[1]) | set(big[1]) | set(idle[1])) == 1

    stream_time, stream_sql = results["stream"][0][0], results["stream"][1][0]
    message_updates = [
        sql
        for sql in stream_sql
        if sql.lstrip().upper().startswith('UPDATE "CONVERSATIONS_CONVERSATIONMESSAGE"')
    ]
    conversation_updates = [
        sql
        for sql in stream_sql
        if sql.lstrip().upper().startswith('UPDATE "CONVERSATIONS_CONVERSATION"')
    ]
    writes = len(message_updates) + len(conversation_updates)
    print(
        f"\nOne streamed reply: {args.stream_chunks} tokens over {stream_time:.2f} s "
        f"({args.chunk_delay * 1000:g} ms apart)"
    )
    print(
        table(
            ["writes", "count", "per token", "one-write-per-token baseline", "ratio"],
            [
                [
                    "UPDATE message (partial text + final)",
                    len(message_updates),
                    f"{len(message_updates) / args.stream_chunks:.3f}",
                    args.stream_chunks,
                    fmt_ratio(args.stream_chunks / max(len(message_updates), 1)) + " fewer",
                ],
                [
                    "UPDATE conversation (heartbeat, lock)",
                    len(conversation_updates),
                    f"{len(conversation_updates) / args.stream_chunks:.3f}",
                    "-",
                    "-",
                ],
                ["all SQL of the turn", len(stream_sql), "-", "-", "-"],
            ],
        )
    )
    expected_saves = stream_time / settings.CONFAB_PARTIAL_SAVE_SECONDS
    print("\nTargets")
    print(
        table(
            ["check", "value", "target", "result"],
            [
                [
                    "SQL statements per turn, 10 vs 100,000 messages (and idle)",
                    f"{small[1][0]} vs {big[1][0]} ({idle[1][0]})",
                    "equal",
                    verdict(same_sql),
                ],
                [
                    "turn time ratio, 100,000 / 10 messages",
                    fmt_ratio(time_ratio),
                    "near 1 (<= 1.3x)",
                    verdict(time_ratio <= 1.3),
                ],
                [
                    "turn time ratio, idle 100,000 / 10 messages",
                    fmt_ratio(idle_ratio),
                    "near 1 (<= 1.3x)",
                    verdict(idle_ratio <= 1.3),
                ],
                [
                    "seed baseline ratio (whole history), 100,000 / 10",
                    fmt_ratio(seed_ratio),
                    "-",
                    "-",
                ],
                [
                    "partial-text saves per reply",
                    f"{len(message_updates)} for {args.stream_chunks} tokens",
                    f"<= {expected_saves:.0f} + 2 (one per "
                    f"{settings.CONFAB_PARTIAL_SAVE_SECONDS} s + final)",
                    verdict(len(message_updates) <= expected_saves + 2),
                ],
                [
                    "all writes per reply vs one per token",
                    f"{writes} vs {args.stream_chunks}",
                    "bounded by time",
                    verdict(writes < args.stream_chunks / 4),
                ],
            ],
        )
    )


if __name__ == "__main__":
    main()
