"""The history benchmark's data: 1,000,000 messages in the bench database.

One conversation of 100,000 messages plus 9,000 of 100, their rows
interleaved in id order as on a busy table (a seeded shuffle), each a real
stored message in the seed's `{"_type", "_value"}` shape. Rows go in with
PostgreSQL COPY, so a full load takes seconds, not minutes. A load is reused
by later runs unless `--reload` is given (or the sizes differ).

Every conversation is one chain (parent = the previous message, as migration 0015
makes them), except a second conversation of 100,000 messages, interleaved the same
way, that is a tree (conversations/tree.py): a fork every 50 messages of its active
branch, where 1 to 3 other replies were kept as siblings (`BRANCHED_TITLE`).

    python -m bench.dataset [--reload] [--big 100000] [--small 9000] [--small-size 100]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

BIG_TITLE = "bench: the long conversation"
BRANCHED_TITLE = "bench: the long branched conversation"
FORK_EVERY = 50
SEED = 8
OTHER_USERS = 90

WORDS = (  # noqa: SIM905 - a sentence is easier to read than a list
    "the a coffee order please would like tea with milk sugar no thanks how much is it "
    "where station train ticket tomorrow morning evening hotel room reservation name "
    "你好 咖啡 谢谢 请问 多少钱 안녕하세요 커피 주세요 감사합니다 bonjour merci café"
).split()


@dataclass
class Dataset:
    """What a benchmark needs to know about the loaded data."""

    owner_id: int
    big_conversation_id: int
    big_size: int
    small_conversations: int
    small_size: int
    total_messages: int
    first_big_id: int
    last_big_id: int
    # The tree of the same size (0 when the data predates it: reload).
    branched_conversation_id: int = 0


def _human_content(text: str) -> str:
    return (
        '{"_type": "HumanMessage", "_value": {"content": '
        + json.dumps(text, ensure_ascii=False)
        + ', "additional_kwargs": {}, "response_metadata": {}, "type": "human", '
        '"name": null, "id": null, "example": false}}'
    )


def _ai_content(text: str, run_id: int, tokens: int) -> str:
    usage = {
        "input_tokens": 139,
        "output_tokens": tokens,
        "total_tokens": 139 + tokens,
        "input_token_details": {"audio": 0, "cache_read": 0},
        "output_token_details": {"audio": 0, "reasoning": 0},
    }
    return (
        '{"_type": "AIMessage", "_value": {"content": '
        + json.dumps(text, ensure_ascii=False)
        + ', "additional_kwargs": {}, "response_metadata": {"model_name": "gpt-4o-mini", '
        '"finish_reason": "stop"}, "type": "ai", "name": null, '
        f'"id": "run-{run_id:08d}-bench", "example": false, "tool_calls": [], '
        '"invalid_tool_calls": [], "usage_metadata": ' + json.dumps(usage) + "}}"
    )


def current() -> Dataset | None:
    """The loaded dataset, or None when the bench database holds none."""
    from conversations.models import Conversation, ConversationMessage

    big = Conversation.objects.filter(title=BIG_TITLE).first()
    if big is None:
        return None
    small = Conversation.objects.filter(title__startswith="bench chat ")
    ids = ConversationMessage.objects.filter(conversation_id=big.pk).order_by("id")
    first = ids.values_list("id", flat=True).first()
    last = ids.reverse().values_list("id", flat=True).first()
    small_count = small.count()
    small_size = small.first().message_count if small_count else 0
    branched = Conversation.objects.filter(title=BRANCHED_TITLE).first()
    return Dataset(
        owner_id=big.user_id,
        big_conversation_id=big.pk,
        big_size=big.message_count,
        small_conversations=small_count,
        small_size=small_size,
        total_messages=big.message_count
        + small_count * small_size
        + (branched.message_count if branched else 0),
        first_big_id=first or 0,
        last_big_id=last or 0,
        branched_conversation_id=branched.pk if branched else 0,
    )


def load(
    *, big: int = 100_000, small: int = 9_000, small_size: int = 100, reload: bool = False
) -> Dataset:
    """Load (or reuse) the dataset and return its description."""
    existing = current()
    if (
        existing
        and not reload
        and (existing.big_size, existing.small_conversations, existing.small_size)
        == (big, small, small_size)
        and existing.branched_conversation_id
    ):
        return existing
    started = time.perf_counter()
    _generate(big=big, small=small, small_size=small_size)
    dataset = current()
    assert dataset is not None
    print(
        f"loaded {dataset.total_messages:,} messages in {time.perf_counter() - started:.1f} s "
        f"(2 conversations of {big:,}, one of them branched, + {small:,} of {small_size})",
        flush=True,
    )
    return dataset


def _generate(*, big: int, small: int, small_size: int) -> None:
    from django.db import connection, transaction

    # One transaction: COPY FREEZE needs the table truncated in the same one.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE conversations_conversationmessage, conversations_chatroom, "
            "conversations_conversation, api_accesstoken, auth_user RESTART IDENTITY CASCADE"
        )
        order, users = _create_conversations(big=big, small=small, small_size=small_size)
        # Build the secondary indexes once after the load instead of row by row,
        # and skip the per-row foreign-key triggers (the rows are consistent by
        # construction): this is what makes the load take seconds.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'conversations_conversationmessage' AND indexname NOT LIKE %s",
            ["%_pkey"],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SET LOCAL session_replication_role = replica")
        started = time.perf_counter()
        _copy_messages(cursor.cursor, order, users)
        copied = time.perf_counter()
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        print(
            f"COPY {len(order):,} rows: {copied - started:.1f} s; "
            f"{len(indexes)} indexes: {time.perf_counter() - copied:.1f} s",
            flush=True,
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('conversations_conversationmessage', 'id'), %s)",
            [len(order)],
        )
        cursor.execute(
            """
            UPDATE conversations_conversation c
               SET message_count = s.n, last_message_at = s.last_at, activity_at = s.last_at
              FROM (SELECT conversation_id, count(*) AS n, max(created_at) AS last_at
                      FROM conversations_conversationmessage GROUP BY conversation_id) s
             WHERE s.conversation_id = c.id
            """
        )
        started = time.perf_counter()
        _make_trees(cursor)
        print(f"chains and the branched tree: {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE conversations_conversationmessage")
        cursor.execute("VACUUM ANALYZE conversations_conversation")
    print(f"VACUUM ANALYZE: {time.perf_counter() - started:.1f} s", flush=True)


def _create_conversations(
    *, big: int, small: int, small_size: int
) -> tuple[list[int], dict[int, int]]:
    """Users and conversations; returns the shuffled conversation id of every message."""
    from django.contrib.auth import get_user_model

    from conversations.models import Agent, Conversation

    user_model = get_user_model()
    owner = user_model.objects.create_user(username="bench-owner", password="bench-password-1")
    others = user_model.objects.bulk_create(
        [user_model(username=f"bench-user-{i}", password="!") for i in range(OTHER_USERS)]
    )
    agent = Agent.objects.get(slug="language-tutor")
    context = {"언어": "Chinese", "상황": "ordering coffee", "레벨": "beginner"}
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(user=owner, agent=agent, context=context, title=BIG_TITLE),
            Conversation(user=owner, agent=agent, context=context, title=BRANCHED_TITLE),
        ]
        + [
            Conversation(
                user=owner if i % 90 == 0 else others[i % OTHER_USERS],
                agent=agent,
                context=context,
                title=f"bench chat {i}",
            )
            for i in range(small)
        ]
    )
    sizes = {conversations[0].pk: big, conversations[1].pk: big}
    sizes.update({c.pk: small_size for c in conversations[2:]})
    order = [pk for pk, size in sizes.items() for _ in range(size)]
    random.Random(SEED).shuffle(order)
    return order, {c.pk: c.user_id for c in conversations}


def _copy_messages(raw_cursor, order: list[int], users: dict[int, int]) -> None:
    rng = random.Random(SEED + 1)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(6, 40))) for _ in range(2_000)]
    humans = [_human_content(text) for text in texts]
    # The AI content per text, split around its run id (json.dumps per row is slow).
    ais = [_ai_content(text, 0, len(text.split())).split("run-00000000") for text in texts]
    usages = [
        f'{{"input_tokens": 139, "output_tokens": {n}, "total_tokens": {139 + n}}}'
        for n in (len(text.split()) for text in texts)
    ]
    seen: dict[int, int] = {}
    base = datetime(2026, 1, 1, tzinfo=UTC)
    columns = (
        "id, conversation_id, user_id, role, content, text, status, turn_id, "
        "client_message_id, model, usage, error, created_at, updated_at"
    )
    sql = f"COPY conversations_conversationmessage ({columns}) FROM STDIN (FREEZE)"
    # Text-format lines built by hand: the generated texts hold no tab, newline or
    # backslash, so nothing needs escaping, and this is several times faster than
    # adapting a tuple per row.
    buffer: list[str] = []
    with raw_cursor.copy(sql) as copy:
        for index, conversation_id in enumerate(order, start=1):
            position = seen.get(conversation_id, 0)
            seen[conversation_id] = position + 1
            pick = index % len(texts)
            text = texts[pick]
            at = (base + timedelta(milliseconds=10 * index)).isoformat()
            user_id = users[conversation_id]
            if position % 2 == 0:
                line = (
                    f"{index}\t{conversation_id}\t{user_id}\thuman\t{humans[pick]}\t{text}"
                    f"\tcomplete\t\\N\t\\N\t\t\\N\t\\N\t{at}\t{at}\n"
                )
            else:
                head, tail = ais[pick]
                content = f"{head}run-{index:08d}{tail}"
                usage = usages[pick]
                line = (
                    f"{index}\t{conversation_id}\t{user_id}\tai\t{content}\t{text}"
                    f"\tcomplete\t\\N\t\\N\tgpt-4o-mini\t{usage}\t\\N\t{at}\t{at}\n"
                )
            buffer.append(line)
            if len(buffer) >= 10_000:
                copy.write("".join(buffer).encode())
                buffer.clear()
        if buffer:
            copy.write("".join(buffer).encode())


def _make_trees(cursor, *, chain: bool = True) -> None:
    """Chain every conversation as migration 0015 does, then make the branched one a
    tree: after every FORK_EVERY messages of its path, 1 to 3 alternatives of the last
    one (the same parent, off the path, listed in each other's `sibling_ids`)."""
    import importlib

    migration = importlib.import_module("conversations.migrations.0015_message_tree")
    if chain:  # not right after the migration itself (bench/branches.py)
        cursor.execute(migration.CHAIN_MESSAGES)
    cursor.execute("SELECT id FROM conversations_conversation WHERE title = %s", [BRANCHED_TITLE])
    (branched,) = cursor.fetchone()
    cursor.execute(
        "SELECT id FROM conversations_conversationmessage WHERE conversation_id = %s ORDER BY id",
        [branched],
    )
    ids = [row[0] for row in cursor.fetchall()]
    parents: list[int | None] = []
    on_path: list[bool] = []
    siblings: list[str | None] = []
    rng = random.Random(SEED + 2)
    position, previous, path_length = 0, None, 0
    while position < len(ids):
        pk = ids[position]
        parents.append(previous)
        on_path.append(True)
        siblings.append(None)
        path_length += 1
        position += 1
        if path_length % FORK_EVERY or position >= len(ids):
            previous = pk
            continue
        # A fork: this message and 1-3 alternatives, all answers to `previous`.
        alternatives = ids[position : position + rng.randint(1, 3)]
        group = json.dumps([pk, *alternatives])
        siblings[-1] = group
        for _ in alternatives:
            parents.append(previous)
            on_path.append(False)
            siblings.append(group)
        position += len(alternatives)
        previous = pk
    cursor.execute(
        """
        UPDATE conversations_conversationmessage AS m
           SET parent_id = v.parent, on_path = v.on_path, sibling_ids = v.siblings::jsonb
          FROM unnest(%s::bigint[], %s::bigint[], %s::boolean[], %s::text[])
               AS v(id, parent, on_path, siblings)
         WHERE m.id = v.id
        """,
        [ids[: len(parents)], parents, on_path, siblings],
    )
    cursor.execute(
        """
        UPDATE conversations_conversation AS c SET active_leaf_id = (
          SELECT MAX(m.id) FROM conversations_conversationmessage AS m
           WHERE m.conversation_id = c.id AND m.on_path)
        """
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reload", action="store_true", help="drop and load again")
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=9_000)
    parser.add_argument("--small-size", type=int, default=100)
    args = parser.parse_args()
    from bench.common import ensure_database, setup_django

    setup_django(redis=False)
    ensure_database()
    dataset = load(big=args.big, small=args.small, small_size=args.small_size, reload=args.reload)
    print(dataset)


if __name__ == "__main__":
    main()
