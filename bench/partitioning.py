"""History pages on 10,000,000 messages: one table against hash partitions by conversation.

Builds, in a scratch database of its own (`confab_bench_partition`, never the product's),
two copies of the same rows shaped like `ConversationMessage` (the columns a history
page reads): `messages_plain`, one table with the product's `(conversation_id, id)`
index, and `messages_hash`, declaratively partitioned `BY HASH (conversation_id)` into
`--partitions` (16) partitions with the same key as primary key. The rows are generated
in SQL (generate_series, then INSERT ... SELECT for the copy: no ORM), in UNLOGGED
tables (only the build is faster; reads are the same), then VACUUM ANALYZE.

Then it times history pages (every variant once per sampled conversation, in a
shuffled order), the product's query shape (conversations/history_pages.py:
the conversation as the range [id, id], ordered by (conversation_id, id), LIMIT 51), for
random conversations, and the same with `conversation_id = id`, on both tables, and
prints each against the baseline measured in the same run: the product's query on the
plain table. Hash partition pruning needs equality: the range form visits every
partition.

    .venv/bin/python -m bench.partitioning [--rows 10000000] [--conversations 250000]
        [--partitions 16] [--repeat 2000] [--reload] [--drop]
"""

from __future__ import annotations

import argparse
import random
import re
import time

import psycopg

from bench.common import database_url, fmt_ms, fmt_ratio, percentile, print_machine, table

DATABASE = "confab_bench_partition"
PAGE = 51  # a page of 50 and one more to know whether an older page exists

COLUMNS = """
    id bigint NOT NULL,
    conversation_id bigint NOT NULL,
    role varchar(16) NOT NULL,
    status varchar(16) NOT NULL,
    text text NOT NULL,
    created_at timestamptz NOT NULL
"""

QUERIES = {
    "range (product)": (
        "SELECT id, role, status, text, created_at FROM {table} "
        "WHERE conversation_id >= %(c)s AND conversation_id <= %(c)s {cursor}"
        "ORDER BY conversation_id DESC, id DESC LIMIT 51"
    ),
    "equality + range": (
        "SELECT id, role, status, text, created_at FROM {table} "
        "WHERE conversation_id = %(c)s AND conversation_id >= %(c)s "
        "AND conversation_id <= %(c)s {cursor}"
        "ORDER BY conversation_id DESC, id DESC LIMIT 51"
    ),
    "equality": (
        "SELECT id, role, status, text, created_at FROM {table} "
        "WHERE conversation_id = %(c)s {cursor}"
        "ORDER BY conversation_id DESC, id DESC LIMIT 51"
    ),
}


def scratch_url() -> str:
    return database_url().rsplit("/", 1)[0] + f"/{DATABASE}"


def admin_url() -> str:
    return database_url().rsplit("/", 1)[0] + "/postgres"


def build(rows: int, conversations: int, partitions: int, reload: bool) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if exists and reload:
            conn.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(scratch_url(), autocommit=True) as conn:
        have = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname IN ('messages_plain', 'messages_hash')"
        ).fetchone()[0]
        if have == 2:
            count = conn.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE relname = 'messages_plain'"
            ).fetchone()[0]
            print(f"# reusing the scratch tables (about {count:,} rows; --reload rebuilds)")
            return
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("DROP TABLE IF EXISTS messages_plain, messages_hash")
        conn.execute(f"CREATE UNLOGGED TABLE messages_plain ({COLUMNS})")
        # Messages of many conversations interleave in id order, as in production: the
        # conversation of message g is a multiplicative hash of g.
        conn.execute(
            """
            INSERT INTO messages_plain
            SELECT g,
                   1 + (g * 2654435761) %% %(conversations)s,
                   CASE WHEN g %% 2 = 0 THEN 'human' ELSE 'ai' END,
                   'complete',
                   'message text number ' || g || ' with some more words in it',
                   timestamptz '2026-01-01' + g * interval '3 seconds'
            FROM generate_series(1, %(rows)s) AS g
            """,
            {"rows": rows, "conversations": conversations},
        )
        loaded = time.perf_counter()
        conn.execute("ALTER TABLE messages_plain ADD PRIMARY KEY (id)")
        conn.execute("CREATE INDEX messages_plain_history ON messages_plain (conversation_id, id)")
        conn.execute(
            f"CREATE UNLOGGED TABLE messages_hash ({COLUMNS}, "
            "PRIMARY KEY (conversation_id, id)) PARTITION BY HASH (conversation_id)"
        )
        for remainder in range(partitions):
            conn.execute(
                f"CREATE UNLOGGED TABLE messages_hash_{remainder} PARTITION OF messages_hash "
                f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {remainder})"
            )
        conn.execute("INSERT INTO messages_hash SELECT * FROM messages_plain")
        conn.execute("VACUUM ANALYZE messages_plain")
        conn.execute("VACUUM ANALYZE messages_hash")
        print(
            f"# built {rows:,} rows x 2 in {time.perf_counter() - started:.0f} s "
            f"(generate_series {loaded - started:.0f} s)"
        )


def sizes(conn: psycopg.Connection) -> list[list[str]]:
    out = []
    for name in ("messages_plain", "messages_hash"):
        row = conn.execute(
            """
            SELECT sum(pg_relation_size(c.oid)), sum(pg_indexes_size(c.oid))
            FROM pg_class c
            WHERE c.relname = %s OR c.oid IN (
                SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)
            """,
            [name, name],
        ).fetchone()
        out.append([name, f"{row[0] / 2**20:,.0f} MiB", f"{row[1] / 2**20:,.0f} MiB"])
    return out


def cursors(conn: psycopg.Connection, sample: list[int]) -> dict[int, int]:
    """A mid-history message id of each sampled conversation (the `before` cursor)."""
    out = {}
    for conversation in sample:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM messages_plain WHERE conversation_id = %s ORDER BY id",
                [conversation],
            )
        ]
        out[conversation] = ids[len(ids) // 2] if ids else 0
    return out


def measure(
    conn: psycopg.Connection, statements: dict, sample: list[int], before: dict | None
) -> dict:
    """Seconds per page of each statement, client round trip included. Interleaved: for
    each sampled conversation every statement runs once, in a shuffled order, so the
    machine's background load hits all variants alike."""
    rng = random.Random(11)
    keys = list(statements)
    samples: dict = {key: [] for key in keys}
    for conversation in sample[:20]:  # warm the buffers and the catalog caches
        for key in keys:
            conn.execute(
                statements[key], {"c": conversation, "before": (before or {}).get(conversation)}
            )
    for conversation in sample:
        params = {"c": conversation, "before": (before or {}).get(conversation)}
        rng.shuffle(keys)
        for key in keys:
            start = time.perf_counter()
            rows = conn.execute(statements[key], params).fetchall()
            samples[key].append(time.perf_counter() - start)
            assert len(rows) <= PAGE
    return {key: sorted(values) for key, values in samples.items()}


def plan_of(conn: psycopg.Connection, sql: str, conversation: int) -> str:
    """The plan's nodes, outermost first, and how many partitions it visits."""
    plan = [row[0] for row in conn.execute("EXPLAIN (COSTS OFF) " + sql, {"c": conversation})]
    nodes = []
    for line in plan:
        text = line.strip().removeprefix("->").strip()
        if text and not text.startswith(("Index Cond", "Sort Key", "Recheck", "Filter")):
            nodes.append(text.split(" on ")[0].split(" using ")[0])
    partitions = set(re.findall(r" on messages_hash_(\d+)", "\n".join(plan)))
    summary = " > ".join(dict.fromkeys(nodes))
    return summary + (f" ({len(partitions)} partitions)" if partitions else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--conversations", type=int, default=250_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--reload", action="store_true", help="rebuild the scratch tables")
    parser.add_argument("--drop", action="store_true", help="drop the scratch database after")
    args = parser.parse_args()
    print_machine()
    build(args.rows, args.conversations, args.partitions, args.reload)
    rng = random.Random(7)
    sample = [1 + rng.randrange(args.conversations) for _ in range(args.repeat)]
    with psycopg.connect(scratch_url(), autocommit=True, prepare_threshold=None) as conn:
        print(table(["table", "heap", "indexes"], sizes(conn)))
        before = cursors(conn, sample[: min(len(sample), 500)])
        results = []
        for page, cursor_sql, use in (
            ("newest", "", None),
            ("middle (before=)", "AND id < %(before)s ", before),
        ):
            pages = sample if use is None else list(before)
            statements = {
                (table_name, form): template.format(table=table_name, cursor=cursor_sql)
                for table_name in ("messages_plain", "messages_hash")
                for form, template in QUERIES.items()
            }
            measured = measure(conn, statements, pages, use)
            timings = {key: (measured[key], sql) for key, sql in statements.items()}
            base = percentile(timings[("messages_plain", "range (product)")][0], 50)
            for (table_name, form), (samples, sql) in timings.items():
                median = percentile(samples, 50)
                results.append(
                    [
                        page,
                        table_name,
                        form,
                        plan_of(conn, sql.replace("%(before)s", "1000000"), pages[0]),
                        fmt_ms(median * 1000),
                        fmt_ms(percentile(samples, 95) * 1000),
                        fmt_ratio(median / base),
                    ]
                )
        print(
            table(
                ["page", "table", "query", "plan", "median ms", "p95 ms", "vs product on plain"],
                results,
            )
        )
    if args.drop:
        with psycopg.connect(admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')


if __name__ == "__main__":
    main()
