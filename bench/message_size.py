"""Bytes on disk per stored message, for the database-size line of the capacity plan.

Migrates a scratch database (`confab_bench_size`), stores `--pairs` human/AI message
pairs in one table shaped by the real migrations (the seed's `{"_type", "_value"}`
content JSON plus the `text` column, usage and model as a turn stores them) with SQL
(INSERT ... SELECT generate_series), human messages of `--human-chars` and replies of
`--ai-chars` characters of varied text, VACUUM ANALYZE, then prints the table, TOAST
and index bytes per message. Baseline in the same run: the raw text bytes alone.

    .venv/bin/python -m bench.message_size [--pairs 100000] [--human-chars 200]
        [--ai-chars 1200] [--drop]
"""

from __future__ import annotations

import argparse

import psycopg

from bench.common import drop_database, fresh_database, print_machine, table

DATABASE = "confab_bench_size"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--human-chars", type=int, default=200)
    parser.add_argument("--ai-chars", type=int, default=1200)
    parser.add_argument("--drop", action="store_true")
    args = parser.parse_args()
    base = fresh_database(DATABASE)
    from bench.turn_cost import make_conversation

    conversation = make_conversation(0, "size")
    print_machine()
    with psycopg.connect(f"{base}/{DATABASE}", autocommit=True) as conn:
        # Varied words (md5 hex), so compression sees text about as compressible as prose.
        conn.execute(
            """
            INSERT INTO conversations_conversationmessage
                (conversation_id, user_id, role, content, text, status, model, usage,
                 created_at, updated_at)
            SELECT %(c)s, %(u)s, role, jsonb_build_object(
                       '_type', CASE role WHEN 'human' THEN 'HumanMessage' ELSE 'AIMessage' END,
                       '_value', jsonb_build_object(
                           'content', body, 'type', role, 'id', 'run-' || md5(n::text),
                           'additional_kwargs', '{}'::jsonb,
                           'response_metadata', CASE role WHEN 'ai' THEN jsonb_build_object(
                               'finish_reason', 'stop', 'model_name', 'gpt-4o-mini')
                               ELSE '{}'::jsonb END)),
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
                "c": conversation.pk,
                "u": conversation.user_id,
                "rows": args.pairs * 2,
                "h": args.human_chars,
                "a": args.ai_chars,
            },
        )
        conn.execute("VACUUM ANALYZE conversations_conversationmessage")
        heap, toast, indexes, text_bytes, rows = conn.execute(
            """
            SELECT pg_relation_size(c.oid),
                   COALESCE(pg_total_relation_size(c.reltoastrelid), 0),
                   pg_indexes_size(c.oid),
                   (SELECT sum(octet_length(text)) FROM conversations_conversationmessage),
                   (SELECT count(*) FROM conversations_conversationmessage)
            FROM pg_class c WHERE c.relname = 'conversations_conversationmessage'
            """
        ).fetchone()
    total = heap + toast + indexes
    rows_out = [
        ["table (heap)", f"{heap / rows:,.0f}"],
        ["TOAST", f"{toast / rows:,.0f}"],
        ["indexes", f"{indexes / rows:,.0f}"],
        ["total per message", f"{total / rows:,.0f}"],
        ["baseline: the text alone", f"{text_bytes / rows:,.0f}"],
        ["total vs baseline", f"{total / text_bytes:.2f}x"],
    ]
    print(
        f"# {rows:,} messages: human {args.human_chars} chars, AI {args.ai_chars} chars, "
        "stored as a turn stores them"
    )
    print(table(["bytes per message", "value"], rows_out))
    if args.drop:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
