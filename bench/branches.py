"""Conversations as trees (issue 18), on the history benchmark's data (bench/dataset.py):
migration 0015 on the 1,000,000-message table, a fork and a branch switch at 100,000
messages, and the model's window at 10 and 100,000 messages.

    python -m bench.branches [--repeat 5] [--no-migration]

- migration   the data is migrated back to 0014 (the tree's columns and indexes
              dropped), then 0015 is applied as `manage.py migrate` does; every statement
              that takes over 50 ms is listed (the chain UPDATE, the leaves, the indexes);
              the branched conversation is then shaped again;
- fork        `services.fork_conversation` of the branched conversation at its leaf
              (about 96,000 messages copied) and of a 100-message one, each in a
              transaction rolled back: time and statements;
- switch      `services.switch_branch` near the root of the branched conversation (its
              newest leaf is found under about 96,000 messages and the two branches'
              flags rewritten) and at its last fork (a few messages), rolled back;
- window      the statements and time of the model's window (`history_window`, what a
              turn reads) in a 10-message conversation and the branched one.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from typing import Any

from bench.common import (
    Summary,
    ensure_database,
    fmt_ms,
    print_machine,
    setup_django,
    table,
    time_calls,
    verdict,
)


class Rollback(Exception):
    """Raised to roll a measured write back."""


@contextmanager
def rolled_back():
    from django.db import transaction

    try:
        with transaction.atomic():
            yield
            raise Rollback
    except Rollback:
        pass


def statements_of(fn: Any) -> tuple[float, int]:
    """Seconds and SQL statements of one call of `fn` (rolled back)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with rolled_back(), CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
    return elapsed, len(queries)


def timed_migration() -> list[tuple[str, float]]:
    """Migrate conversations back to 0014, then time 0015; the slow statements."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", "conversations", "0014", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE conversations_conversationmessage")
    slow: list[tuple[str, float]] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > 0.05:
                slow.append((" ".join(sql.split())[:90], elapsed))

    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        call_command("migrate", "conversations", "0015", verbosity=0, interactive=False)
    slow.append(
        ("migrate conversations 0015 (total, with its commit)", time.perf_counter() - started)
    )
    return slow


def main() -> None:
    parser = argparse.ArgumentParser(description="Conversation trees benchmark (issue 18).")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per write")
    parser.add_argument("--no-migration", action="store_true", help="skip the migration run")
    args = parser.parse_args()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    setup_django(redis=False)
    ensure_database()
    from django.db import connection, transaction
    from langchain_core.messages import AIMessage, HumanMessage

    from bench.dataset import _make_trees, load
    from conversations import selectors, services
    from conversations.models import Conversation, ConversationMessage

    dataset = load()
    print_machine()
    print(f"# {dataset.total_messages:,} messages")

    if not args.no_migration:
        slow = timed_migration()
        with transaction.atomic(), connection.cursor() as cursor:
            _make_trees(cursor, chain=False)  # the reverse migration dropped the tree's shape
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE conversations_conversationmessage")
            cursor.execute("VACUUM ANALYZE conversations_conversation")
        print("\nMigration 0015 on the table (statements over 50 ms)")
        print(table(["statement", "s"], [[sql, f"{s:.1f}"] for sql, s in slow]))

    branched = Conversation.objects.select_related("agent").get(pk=dataset.branched_conversation_id)
    small = (
        Conversation.objects.select_related("agent")
        .filter(user_id=dataset.owner_id, title__startswith="bench chat ")
        .first()
    )
    path = list(
        ConversationMessage.objects.filter(conversation_id=branched.pk, on_path=True)
        .order_by("id")
        .values("id", "sibling_ids")
    )
    forks = [m["id"] for m in path if m["sibling_ids"]]
    first_fork, last_fork = forks[0], forks[-1]
    first_alternative = next(
        pk for pk in ConversationMessage.objects.get(pk=first_fork).sibling_ids if pk != first_fork
    )
    last_alternative = next(
        pk for pk in ConversationMessage.objects.get(pk=last_fork).sibling_ids if pk != last_fork
    )

    def measure(fn: Any) -> tuple[Summary, int]:
        runs = [statements_of(fn) for _ in range(args.repeat)]
        return Summary.of([r[0] for r in runs]), runs[-1][1]

    def fork_of(conversation: Any) -> Any:
        conversation.refresh_from_db()
        leaf = conversation.active_leaf_id
        return lambda: services.fork_conversation(conversation=conversation, message_id=leaf)

    def switch_to(message_id: int) -> Any:
        return lambda: services.switch_branch(conversation=branched, message_id=message_id)

    results = [
        ("fork, 100-message conversation", *measure(fork_of(small))),
        (f"fork, branched conversation ({len(path):,} copied)", *measure(fork_of(branched))),
        ("switch at the last fork (a few rows change)", *measure(switch_to(last_alternative))),
        (
            f"switch at the first fork (~{len(path):,} rows change)",
            *measure(switch_to(first_alternative)),
        ),
    ]

    # The model's window: a 10-message conversation against the branched one.
    def window(conversation_id: int) -> Any:
        return lambda: list(
            selectors.history_window(conversation_id=conversation_id, up_to_id=2**62, size=50)
        )

    with rolled_back():
        ten = services.create_conversation(user=branched.user, agent=branched.agent)
        for index in range(5):
            services.append_message(conversation=ten, message=HumanMessage(f"q{index}"))
            services.append_message(conversation=ten, message=AIMessage(f"a{index}"))
        window_small = measure(window(ten.pk))
        window_small_time = Summary.of(time_calls(window(ten.pk), repeat=50))
    window_big = measure(window(branched.pk))
    window_big_time = Summary.of(time_calls(window(branched.pk), repeat=50))
    results += [
        ("model window, 10 messages", window_small_time, window_small[1]),
        (f"model window, {branched.message_count:,} (tree)", window_big_time, window_big[1]),
    ]
    print("\nWrites and reads of the tree (median of the runs)")
    print(
        table(
            ["operation", "median ms", "max ms", "statements"],
            [[name, fmt_ms(s.median), fmt_ms(s.maximum), n] for name, s, n in results],
        )
    )
    checks = [
        ("fork: same statements at 100 and ~96,000 messages", results[0][2] == results[1][2]),
        ("model window: same statements at 10 and 100,000", window_small[1] == window_big[1]),
    ]
    print("\nTargets")
    print(table(["check", "result"], [[name, verdict(ok)] for name, ok in checks]))


if __name__ == "__main__":
    main()
