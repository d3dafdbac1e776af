"""A month of one heavy user's usage: the roll-up against the per-call ledger.

Loads, for one user, 100,000 model calls (`UsageRecord`, one per AI message) spread
over a UTC month, 3 models and 600 conversations (each active on one to three days),
plus 300,000 calls of 30 other users in the same table, and the daily roll-up rows
(`UsageDay`) those calls add up to (built with one GROUP BY, the same sums the
per-call upsert keeps). Then times, in the same run:

- the usage report of the month (`usage_report`, by day, model and conversation) and the
  quota's read (`quota_state`: this day and month, used and in flight), which read the
  roll-up;
- the same report computed from the per-call ledger (a GROUP BY over the user's
  100,000 rows of the month): the baseline;
- the write: `record_usage` (ledger row + roll-up upsert) against a ledger insert alone.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/confab_bench \
        python -m bench.usage [--calls 100000] [--repeat 50]
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from decimal import Decimal

from bench.common import ensure_database, fmt_ms, print_machine, setup_django, table, time_calls

MONTH = date(2026, 11, 1)
USERNAME = "usage-bench"
OTHER_USERS = 30
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"]


def load(calls: int) -> int:
    """(Re)load the bench user's month and the other users' calls; returns the user id."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from conversations.usage.models import UsageDay, UsageRecord

    User = get_user_model()
    user, _ = User.objects.get_or_create(username=USERNAME)
    others = [User.objects.get_or_create(username=f"{USERNAME}-{n}")[0] for n in range(OTHER_USERS)]
    ids = [user.pk] + [other.pk for other in others]
    with transaction.atomic():
        UsageRecord.objects.filter(user_id__in=ids).delete()
        UsageDay.objects.filter(user_id__in=ids).delete()
        with connection.cursor() as cursor:
            record = UsageRecord._meta.db_table
            for user_id, count in [(user.pk, calls)] + [
                (other.pk, calls * 3 // OTHER_USERS) for other in others
            ]:
                # Call i: conversation i % 600, its day from the conversation (one to
                # three days each), a model by conversation, tokens varying per call.
                cursor.execute(
                    f"INSERT INTO {record} (user_id, conversation_id, message_id, model, kind, "
                    "input_tokens, output_tokens, cost, created_at) "
                    "SELECT %s, 1000000 + c, i, (ARRAY[%s, %s, %s])[1 + c %% 3], 'turn', "
                    "500 + i %% 1500, 50 + i %% 400, "
                    "((500 + i %% 1500) * 2.5 + (50 + i %% 400) * 10) / 1000000.0, "
                    "%s::timestamptz + make_interval(days => (c * 7 + (i / 600) %% 3) %% 30, "
                    "secs => i %% 86000) "
                    "FROM (SELECT i, i %% 600 AS c FROM generate_series(1, %s) AS i) AS s",
                    [user_id, *MODELS, datetime(2026, 11, 1, tzinfo=UTC), count],
                )
            # The roll-up the per-call upserts keep: the same sums, by UTC day.
            cursor.execute(
                f"INSERT INTO {UsageDay._meta.db_table} (user_id, day, model, conversation_id, "
                "calls, input_tokens, output_tokens, cost) "
                "SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, model, "
                "coalesce(conversation_id, 0), count(*), sum(input_tokens), sum(output_tokens), "
                f"sum(cost) FROM {record} WHERE user_id = ANY(%s) GROUP BY 1, 2, 3, 4",
                [ids],
            )
        cursor = connection.cursor()
        cursor.execute(f"ANALYZE {record}")
        cursor.execute(f"ANALYZE {UsageDay._meta.db_table}")
    return user.pk


def raw_report(user_id: int, start: date, end: date, group_by: str) -> list[tuple]:
    """The baseline: the same report from the per-call ledger."""
    from django.db.models import Count, Sum
    from django.db.models.functions import TruncDate

    from conversations.usage.models import UsageRecord

    rows = UsageRecord.objects.filter(
        user_id=user_id,
        created_at__gte=datetime(start.year, start.month, start.day, tzinfo=UTC),
        created_at__lt=datetime(2026, 12, 1, tzinfo=UTC),
    )
    if group_by == "day":
        rows = rows.annotate(group=TruncDate("created_at", tzinfo=UTC))
        key = "group"
    else:
        key = {"model": "model", "conversation": "conversation_id"}[group_by]
    return list(
        rows.values(key)
        .annotate(
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("cost"),
        )
        .order_by(key)
        .values_list(key, "calls", "input_tokens", "output_tokens", "cost")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    setup_django(redis=False)
    ensure_database()
    from types import SimpleNamespace

    from conversations.usage import quota
    from conversations.usage.models import UsageDay, UsageRecord
    from conversations.usage.selectors import quota_state, usage_report
    from conversations.usage.services import record_usage

    print_machine()
    user_id = load(args.calls)
    user = SimpleNamespace(pk=user_id)
    start, end = MONTH, date(2026, 11, 30)
    print(
        f"ledger rows: {UsageRecord.objects.count():,} "
        f"(the user's month: {UsageRecord.objects.filter(user_id=user_id).count():,}); "
        f"roll-up rows of the user's month: {UsageDay.objects.filter(user_id=user_id).count():,}"
    )
    rows = []
    for group_by in ("day", "model", "conversation"):
        report = usage_report(user=user, start=start, end=end, group_by=group_by)
        raw = raw_report(user_id, start, end, group_by)
        assert report["totals"]["calls"] == sum(r[1] for r in raw) == args.calls
        assert report["totals"]["input_tokens"] == sum(r[2] for r in raw)
        assert len(report["groups"]) == len(raw)
        rolled = time_calls(
            lambda g=group_by: usage_report(user=user, start=start, end=end, group_by=g),
            repeat=args.repeat,
        )
        baseline = time_calls(
            lambda g=group_by: raw_report(user_id, start, end, g), repeat=max(5, args.repeat // 5)
        )
        rows.append(_row(f"month by {group_by}", rolled, baseline))
    moment = datetime(2026, 11, 30, 12, tzinfo=UTC)
    limits = quota.Limits(tokens_per_day=10**9, tokens_per_month=10**9)
    state = time_calls(
        lambda: quota_state(user_id, limits=limits, moment=moment), repeat=args.repeat
    )
    raw_month = time_calls(
        lambda: raw_report(user_id, start, end, "model"), repeat=max(5, args.repeat // 5)
    )
    rows.append(_row("quota state (day + month)", state, raw_month))
    print(
        table(
            ["read", "roll-up p50", "roll-up p95", "per-call ledger p50", "ratio", "< 50 ms"],
            rows,
        )
    )
    _writes(user_id, record_usage)


def _row(name: str, rolled: list[float], baseline: list[float]) -> list[str]:
    from bench.common import percentile

    ordered = sorted(rolled)
    p50 = percentile(ordered, 50)
    base = percentile(sorted(baseline), 50)
    return [
        name,
        fmt_ms(p50 * 1000),
        fmt_ms(percentile(ordered, 95) * 1000),
        fmt_ms(base * 1000),
        f"{base / p50:.0f}x",
        "yes" if percentile(ordered, 95) < 0.05 else "NO",
    ]


def _writes(user_id: int, record_usage) -> None:
    """The write side, one call per transaction as a turn writes it: a ledger insert with
    its roll-up upsert, against the ledger insert alone."""
    from django.db import transaction

    from conversations.usage.models import UsageDay, UsageRecord

    count = 300
    marker = 2_000_000

    def with_rollup() -> None:
        for n in range(count):
            with transaction.atomic():
                record_usage(
                    user_id=user_id, conversation_id=marker + n % 20, message_id=None,
                    model="gpt-4o", kind="turn", input_tokens=100, output_tokens=10,
                    cost=Decimal("0.00035"),
                )  # fmt: skip

    def ledger_only() -> None:
        for n in range(count):
            with transaction.atomic():
                UsageRecord.objects.create(
                    user_id=user_id, conversation_id=marker + n % 20, model="gpt-4o",
                    kind="turn", input_tokens=100, output_tokens=10, cost=Decimal("0.00035"),
                )  # fmt: skip

    both = sorted(time_calls(with_rollup, repeat=3, warmup=1))
    alone = sorted(time_calls(ledger_only, repeat=3, warmup=1))
    UsageRecord.objects.filter(user_id=user_id, conversation_id__gte=marker).delete()
    UsageDay.objects.filter(user_id=user_id, conversation_id__gte=marker).delete()
    per_call = both[1] / count * 1000
    per_insert = alone[1] / count * 1000
    print(
        table(
            ["write (per call, committed)", "ledger + roll-up upsert", "ledger alone", "extra"],
            [
                [
                    f"{count} calls, one transaction each",
                    fmt_ms(per_call),
                    fmt_ms(per_insert),
                    fmt_ms(per_call - per_insert),
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
