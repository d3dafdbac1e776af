"""Full-text search against `ILIKE '%term%'` on the 1,000,000-message table.

Loads the history dataset (bench/dataset.py) into the bench database, adds a few rare
"needle" messages to the dataset owner's conversations (an English word, a Korean and a
Chinese two-character word), then times in the same run:

- the search selector (`conversations.search.selectors.search_messages`: the ranked
  GIN query, the messages, their feedback and snippets) and its SQL alone;
- the ILIKE scan a naive implementation runs, for the same user and across the table;
- the write path's extra cost per message: inserting (and re-writing the text of)
  2,000 messages with the search column and index and without them (dropped inside a
  transaction that is rolled back).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/confab_bench_search \
        python -m bench.search [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

NEEDLES = [
    ("zanzibar", "Our ferry to Zanzibar leaves at dawn, bring the tickets"),
    ("제주", "다음 달에 제주도에서 일주일 동안 여행할 거예요"),
    ("长城", "我们明天去长城 早上七点出发"),
]
NEEDLE_COUNT = 20  # messages per needle


def timed(function: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds per call. A sample whose connection was terminated from outside (the
    shared database server's other users' fault tests) is taken again."""
    from django.db import OperationalError, connection

    samples: list[float] = []
    failures = 0
    while len(samples) < repeat:
        started = time.perf_counter()
        try:
            function()
        except OperationalError:
            failures += 1
            if failures > 20:
                raise
            connection.close()
            time.sleep(1)
            continue
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p95(samples: list[float]) -> float:
    return sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]


def add_needles(owner_id: int) -> None:
    from django.db import connection

    from conversations.models import Conversation, ConversationMessage

    if ConversationMessage.objects.filter(user_id=owner_id, text__contains="Zanzibar").exists():
        return
    conversations = list(
        Conversation.objects.filter(user_id=owner_id).order_by("id").values_list("id", flat=True)
    )
    with connection.cursor() as cursor:
        for index, (_, text) in enumerate(NEEDLES):
            for n in range(NEEDLE_COUNT):
                conversation_id = conversations[(index * NEEDLE_COUNT + n * 7) % len(conversations)]
                cursor.execute(
                    "INSERT INTO conversations_conversationmessage (conversation_id, user_id, "
                    "role, content, text, status, model, created_at, updated_at) VALUES "
                    "(%s, %s, 'human', '{}', %s, 'complete', '', now(), now())",
                    [conversation_id, owner_id, f"{text} #{n}"],
                )
        cursor.execute("ANALYZE conversations_conversationmessage")


def write_cost(rows: int = 2_000, rounds: int = 3) -> dict[str, float]:
    """µs per message to insert, and to rewrite the text of, `rows` messages, with the
    search index and without it (dropped in a transaction that is rolled back)."""
    from django.db import connection, transaction

    from conversations.models import Conversation

    conversation = Conversation.objects.order_by("id").first()
    insert = (
        "INSERT INTO conversations_conversationmessage (conversation_id, user_id, role, "
        "content, text, status, model, created_at, updated_at) "
        "SELECT %s, %s, 'ai', '{}', 'a reply about trains and 커피를 주문 and 咖啡 ' || g, "
        "'complete', '', now(), now() FROM generate_series(1, %s) g RETURNING id"
    )
    update = (
        "UPDATE conversations_conversationmessage SET text = text || ' more words' "
        "WHERE id = ANY(%s)"
    )
    results: dict[str, list[float]] = {
        "insert_with": [],
        "insert_without": [],
        "update_with": [],
        "update_without": [],
    }

    class Rollback(Exception):
        pass

    for _ in range(rounds):
        for variant in ("with", "without"):
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    if variant == "without":
                        cursor.execute("DROP INDEX msg_search")
                        cursor.execute(
                            "ALTER TABLE conversations_conversationmessage "
                            "DROP COLUMN search_vector"
                        )
                    started = time.perf_counter()
                    cursor.execute(insert, [conversation.pk, conversation.user_id, rows])
                    ids = [row[0] for row in cursor.fetchall()]
                    inserted = time.perf_counter()
                    cursor.execute(update, [ids])
                    updated = time.perf_counter()
                    results[f"insert_{variant}"].append((inserted - started) / rows * 1e6)
                    results[f"update_{variant}"].append((updated - inserted) / rows * 1e6)
                    raise Rollback
            except Rollback:
                pass
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--scan-repeat", type=int, default=7)
    args = parser.parse_args()
    from bench.common import ensure_database, setup_django

    setup_django(redis=False)
    ensure_database()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench.dataset import load
    from conversations.search.selectors import SearchRequest, _postgres, search_messages
    from conversations.search.text import parse_query

    dataset = load()
    add_needles(dataset.owner_id)
    owner = get_user_model().objects.get(pk=dataset.owner_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM conversations_conversationmessage")
        total = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM conversations_conversationmessage WHERE user_id = %s",
            [owner.pk],
        )
        owned = cursor.fetchone()[0]
    print(f"{total:,} messages; the searching user owns {owned:,}", flush=True)

    def fts_sql(q: str) -> Callable[[], object]:
        statement = _postgres(SearchRequest(q=q, size=20), parse_query(q), owner.pk)

        def run() -> object:
            with connection.cursor() as cursor:
                cursor.execute(*statement)
                return cursor.fetchall()

        return run

    def ilike(term: str, *, own: bool) -> Callable[[], object]:
        sql = "SELECT id FROM conversations_conversationmessage WHERE text ILIKE %s"
        params: list[object] = [f"%{term}%"]
        if own:
            sql += " AND user_id = %s"
            params.append(owner.pk)
        sql += " ORDER BY id DESC LIMIT 21"

        def run() -> object:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

        return run

    print()
    print(
        "| query | found | search selector p50 / p95 (ms) | search SQL p50 | "
        "ILIKE, user's rows p50 | ILIKE, whole table p50 | "
        "ratio (user ILIKE / selector) | ratio (table ILIKE / selector) |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    for term, _ in NEEDLES:
        page = search_messages(user=owner, request=SearchRequest(q=term, size=20))
        found = len(page.results)
        selector = timed(
            lambda t=term: search_messages(user=owner, request=SearchRequest(q=t, size=20)),
            args.repeat,
        )
        sql = timed(fts_sql(term), args.repeat)
        own_scan = timed(ilike(term, own=True), args.scan_repeat)
        table_scan = timed(ilike(term, own=False), args.scan_repeat)
        print(
            f"| `{term}` | {found} | {p50(selector):.2f} / {p95(selector):.2f} | {p50(sql):.2f} | "
            f"{p50(own_scan):.1f} | {p50(table_scan):.1f} | {p50(own_scan) / p50(selector):.0f}x | "
            f"{p50(table_scan) / p50(selector):.0f}x |",
            flush=True,
        )
    common = timed(
        lambda: search_messages(user=owner, request=SearchRequest(q="coffee", size=20)),
        args.scan_repeat,
    )
    common_scan = timed(ilike("coffee", own=True), args.scan_repeat)
    print(
        f"| `coffee` (in many texts) | 20 | {p50(common):.2f} / {p95(common):.2f} | - | "
        f"{p50(common_scan):.1f} | - | {p50(common_scan) / p50(common):.1f}x | - |",
        flush=True,
    )
    costs = write_cost()
    print()
    print(
        "| write, per message (µs, median of 3 x 2,000) | with the search index | without | extra |"
    )
    print("|---|---|---|---|")
    for kind in ("insert", "update"):
        with_index, without = costs[f"{kind}_with"], costs[f"{kind}_without"]
        print(f"| {kind} | {with_index:.1f} | {without:.1f} | {with_index - without:+.1f} |")


if __name__ == "__main__":
    main()
