"""History paging benchmark: page latency at the newest, middle and oldest page of a
100,000-message conversation in a 1,000,000-message table, against baselines.

    python -m bench.history_paging [--repeat 200] [--reload] [--no-live]

Measured (median of `--repeat` calls, limit 50, newest / middle / oldest page):

- raw keyset      one psycopg query on the (conversation_id, id) index: the floor;
- selector        `conversations.selectors.message_page` (ORM rows);
- REST (ASGI)     GET /api/v1/conversations/<id>/messages/?before=  through the ASGI app
                  in process (httpx.ASGITransport): token auth, owner check, serialization;
- REST (live)     the same against a live uvicorn worker over loopback HTTP;
- GraphQL (ASGI)  `messages(conversationId, last: 50, before: <cursor>)`;
- DRF paginator   `PageNumberPagination.paginate_queryset` on the same queryset
                  (COUNT + OFFSET): page 2,000 holds the newest messages, page 1 the oldest;
- DRF endpoint    a plain DRF ListAPIView with that paginator (bench/baseline.py);
- whole history   the seed's `aget_previous_messages`: every row of the conversation
                  loaded and decoded into LangChain messages.

- branched tree    the selector and REST on a second 100,000-message conversation that
                  is a tree (bench/dataset.py: a fork every 50 messages, 1-3 kept
                  alternatives): the page of its active branch at the same depth.

Targets (issue 8): oldest page within 1.2x of the newest; selector within 1.5x of the
raw floor; REST end to end within 5x of the raw floor; the deepest page at least 100x
faster than DRF page numbers. Issue 18: the branched tree's active branch within 1.5x of
the linear conversation's page at each depth (selector and REST), its oldest page within
1.2x of its newest.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import inspect
import json
import os
import random
import time
from typing import Any

import httpx

from bench.common import (
    Summary,
    Target,
    active_toggles,
    database_url,
    ensure_database,
    fmt_ms,
    fmt_ratio,
    print_machine,
    print_targets,
    setup_django,
    table,
    time_calls,
)

LIMIT = 50
DEPTHS = ("newest", "middle", "oldest")
COLUMNS = (
    "id, conversation_id, user_id, role, content, text, status, turn_id, "
    "client_message_id, model, usage, error, created_at, updated_at, "
    "parent_id, on_path, sibling_ids"
)
GRAPHQL_PAGE = """
query Page($id: ID!, $before: String) {
  messages(conversationId: $id, last: 50, before: $before) {
    edges { cursor node { id conversationId role text content status turnId clientMessageId
                          model usage error createdAt updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


def graphql_cursor(message_id: int) -> str:
    try:
        from api.graphql.pagination import encode_message_cursor
    except ImportError:  # GraphQL not built yet
        return base64.urlsafe_b64encode(f"message:{message_id}".encode()).decode()
    return encode_message_cursor(message_id)


class Cursors:
    """The `before` cursor of each depth, and the page number DRF needs for the same rows."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        pages = (len(ids) + LIMIT - 1) // LIMIT
        middle = len(ids) // 2
        self.before = {"newest": None, "middle": ids[middle], "oldest": ids[LIMIT]}
        # The same rows as page numbers (chronological pages: page 1 = oldest).
        self.page = {"newest": pages, "middle": middle // LIMIT, "oldest": 1}


class Variant:
    """One way of getting a page; `call(depth)` is sync or async."""

    def __init__(
        self, name: str, call: Any, *, sparse: bool = False, in_process: bool = True
    ) -> None:
        self.name = name
        self.call = call
        self.sparse = sparse  # slow baselines: measured every 10th round only
        self.in_process = in_process  # CPU time is this process's (not a live server's)
        self.wall: dict[str, list[float]] = {d: [] for d in DEPTHS}
        self.cpu: dict[str, list[float]] = {d: [] for d in DEPTHS}


RAW_PLAIN = {
    "newest": "WHERE conversation_id = %(c)s ORDER BY id DESC LIMIT %(limit)s",
    "older": "WHERE conversation_id = %(c)s AND id < %(id)s ORDER BY id DESC LIMIT %(limit)s",
}
# The conversation as a range and the cursor as a row comparison, ordered by
# (conversation, id): the form that only the (conversation_id, id) index serves, which
# the selector runs (conversations/history_pages.py). The plain form above lets
# PostgreSQL walk the primary key instead: fast on this table (the big conversation's
# rows are spread evenly), pathological when other conversations' messages pile up
# after a conversation's (tests/conversations/test_history_plans.py).
RAW_INDEX_ORDER = {
    "newest": "WHERE conversation_id BETWEEN %(c)s AND %(c)s "
    "ORDER BY conversation_id DESC, id DESC LIMIT %(limit)s",
    "older": "WHERE conversation_id BETWEEN %(c)s AND %(c)s "
    "AND (conversation_id, id) < (%(c)s, %(id)s) "
    "ORDER BY conversation_id DESC, id DESC LIMIT %(limit)s",
}


def raw_variant(name: str, form: dict[str, str], conversation_id: int, cursors: Cursors) -> Variant:
    import psycopg

    conn = psycopg.connect(database_url(), autocommit=True)
    select = f"SELECT {COLUMNS} FROM conversations_conversationmessage "
    newest, older = select + form["newest"], select + form["older"]

    def call(depth: str) -> None:
        before = cursors.before[depth]
        params = {"c": conversation_id, "id": before, "limit": LIMIT + 1}
        rows = conn.execute(newest if before is None else older, params).fetchall()
        assert len(rows) >= LIMIT

    return Variant(name, call)


def selector_variant(conversation: Any, cursors: Cursors, name: str = "") -> Variant:
    from conversations import selectors
    from conversations.inputs import HistoryRequest

    def call(depth: str) -> None:
        page = selectors.message_page(
            conversation=conversation,
            request=HistoryRequest(size=LIMIT, before=cursors.before[depth]),
        )
        assert len(page.results) == LIMIT

    return Variant(name or "selector message_page", call)


def paginator_variant(conversation: Any, cursors: Cursors) -> Variant:
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from bench.baseline import BaselinePagination, baseline_queryset

    factory = APIRequestFactory()
    requests = {d: Request(factory.get("/", {"page": cursors.page[d]})) for d in DEPTHS}

    def call(depth: str) -> None:
        queryset = baseline_queryset(conversation)
        rows = BaselinePagination().paginate_queryset(queryset, requests[depth])
        assert len(rows) == LIMIT

    return Variant("DRF PageNumberPagination", call, sparse=True)


def http_variant(
    name: str,
    client: Any,
    requests: dict[str, tuple[str, str, dict[str, Any] | None]],
    *,
    sparse: bool = False,
    in_process: bool = True,
) -> Variant:
    async def call(depth: str) -> None:
        method, url, body = requests[depth]
        response = await client.request(method, url, json=body)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        payload = response.json()
        assert "errors" not in payload, payload["errors"]

    return Variant(name, call, sparse=sparse, in_process=in_process)


async def run_rounds(variants: list[Variant], repeat: int) -> None:
    """Interleave every variant and depth in each round (shuffled), so that all of them
    see the same background load: the ratios stay meaningful on a busy machine."""
    rng = random.Random(8)
    for round_number in range(repeat + 3):
        timed = round_number >= 3
        for depth in DEPTHS:
            order = list(variants)
            rng.shuffle(order)
            for variant in order:
                if variant.sparse and round_number % 10 and round_number >= 3:
                    continue
                cpu_start = time.process_time()
                start = time.perf_counter()
                result = variant.call(depth)
                if inspect.isawaitable(result):
                    await result
                elapsed = time.perf_counter() - start
                if timed:
                    variant.wall[depth].append(elapsed)
                    variant.cpu[depth].append(time.process_time() - cpu_start)


def measure_whole_history(conversation: Any, repeat: int) -> list[float]:
    """The seed's aget_previous_messages: every row, ordered, decoded into messages."""
    from conversations.codec import decode_message
    from conversations.models import ConversationMessage

    async def load() -> int:
        rows = ConversationMessage.objects.filter(conversation_id=conversation.pk).order_by("id")
        messages = [decode_message(row.content) async for row in rows]
        return len(messages)

    def run() -> None:
        assert asyncio.run(load()) == conversation.message_count

    return time_calls(run, repeat=repeat, warmup=1)


def http_requests(
    conversation_id: int, cursors: Cursors
) -> dict[str, dict[str, tuple[str, str, dict[str, Any] | None]]]:
    """The REST, GraphQL and page-number requests of each depth."""
    rest, graphql, baseline = {}, {}, {}
    for depth in DEPTHS:
        before = cursors.before[depth]
        query = f"?limit={LIMIT}" + (f"&before={before}" if before else "")
        rest[depth] = ("GET", f"/api/v1/conversations/{conversation_id}/messages/{query}", None)
        variables = {
            "id": str(conversation_id),
            "before": graphql_cursor(before) if before else None,
        }
        graphql[depth] = ("POST", "/graphql/", {"query": GRAPHQL_PAGE, "variables": variables})
        page = cursors.page[depth]
        baseline[depth] = (
            "GET",
            f"/bench/baseline/conversations/{conversation_id}/messages/?page={page}",
            None,
        )
    return {"rest": rest, "graphql": graphql, "baseline": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description="History paging benchmark (issue 8).")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per cell")
    parser.add_argument("--reload", action="store_true", help="regenerate the 1M-message data")
    parser.add_argument("--no-live", action="store_true", help="skip the live uvicorn run")
    parser.add_argument(
        "--no-graphql", action="store_true", help="skip GraphQL (e.g. before it exists)"
    )
    parser.add_argument("--quick", action="store_true", help="30 rounds, < 3 min")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 30

    # Sync ORM calls (raw, selector) are timed inside the event loop that also drives
    # the HTTP variants, so that all variants interleave.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    setup_django()
    ensure_database()
    from knox.models import get_token_model

    from bench.dataset import load
    from bench.server import start_uvicorn
    from conversations.models import Conversation, ConversationMessage

    dataset = load(reload=args.reload)
    conversation = Conversation.objects.select_related("agent").get(pk=dataset.big_conversation_id)
    ids = list(
        ConversationMessage.objects.filter(conversation_id=conversation.pk)
        .order_by("id")
        .values_list("id", flat=True)
    )
    cursors = Cursors(ids)
    branched = Conversation.objects.select_related("agent").get(pk=dataset.branched_conversation_id)
    # Its active branch: what its pages show (the cursors are positions on it).
    path_ids = list(
        ConversationMessage.objects.filter(conversation_id=branched.pk, on_path=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    branched_cursors = Cursors(path_ids)
    _, token = get_token_model().objects.create(user=conversation.user, name="bench-history")

    print_machine()
    print(
        f"# {dataset.total_messages:,} messages; conversation {conversation.pk} has "
        f"{len(ids):,}; the branched one {branched.message_count:,}, {len(path_ids):,} on "
        f"its active branch; limit {LIMIT}; {args.repeat} interleaved rounds "
        f"(DRF baselines every 10th); bench toggles: {active_toggles()}"
    )
    requests = http_requests(conversation.pk, cursors)
    branched_requests = http_requests(branched.pk, branched_cursors)
    headers = {"Authorization": f"Bearer {token}"}

    async def measure() -> list[Variant]:
        from backend.asgi import application

        transport = httpx.ASGITransport(app=application)
        async with contextlib.AsyncExitStack() as stack:
            asgi = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=transport, base_url="http://testserver", headers=headers
                )
            )
            variants = [
                raw_variant("raw keyset (floor)", RAW_PLAIN, conversation.pk, cursors),
                raw_variant(
                    "raw keyset, index-order form", RAW_INDEX_ORDER, conversation.pk, cursors
                ),
                selector_variant(conversation, cursors),
                http_variant("REST (ASGI, in process)", asgi, requests["rest"]),
                selector_variant(branched, branched_cursors, "selector, branched tree"),
                http_variant("REST (ASGI), branched tree", asgi, branched_requests["rest"]),
            ]
            if not args.no_live:
                server = stack.enter_context(start_uvicorn(workers=1))
                live = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=server.url, headers=headers)
                )
                variants.append(
                    http_variant(
                        "REST (live uvicorn, HTTP)", live, requests["rest"], in_process=False
                    )
                )
            if not args.no_graphql:
                variants.append(http_variant("GraphQL messages (ASGI)", asgi, requests["graphql"]))
            variants += [
                paginator_variant(conversation, cursors),
                http_variant(
                    "DRF page-number endpoint (ASGI)", asgi, requests["baseline"], sparse=True
                ),
            ]
            await run_rounds(variants, args.repeat)
            return variants

    variants = asyncio.run(measure())
    rows = {v.name: {d: Summary.of(v.wall[d]) for d in DEPTHS} for v in variants}
    cpu = {v.name: {d: Summary.of(v.cpu[d]) for d in DEPTHS} for v in variants if v.in_process}
    whole = Summary.of(measure_whole_history(conversation, repeat=3))

    floor = rows["raw keyset (floor)"]
    print()
    print(
        "Page latency, median ms (page numbers for DRF: "
        + ", ".join(f"{d} = page {cursors.page[d]}" for d in DEPTHS)
        + ")"
    )
    print(
        table(
            ["", *[f"{d} ms" for d in DEPTHS], "p95 oldest", "oldest/newest", "vs floor (max)"],
            [
                [
                    name,
                    *[fmt_ms(cells[d].median) for d in DEPTHS],
                    fmt_ms(cells["oldest"].p95),
                    fmt_ratio(cells["oldest"].median / cells["newest"].median),
                    fmt_ratio(max(cells[d].median / floor[d].median for d in DEPTHS)),
                ]
                for name, cells in rows.items()
            ],
        )
    )
    print("\nCPU of this process per call, median ms (client + server for ASGI rows)")
    print(
        table(
            ["", *[f"{d} ms" for d in DEPTHS], "vs floor (max)"],
            [
                [
                    name,
                    *[fmt_ms(cells[d].median) for d in DEPTHS],
                    fmt_ratio(
                        max(
                            cells[d].median / max(cpu["raw keyset (floor)"][d].median, 1e-9)
                            for d in DEPTHS
                        )
                    ),
                ]
                for name, cells in cpu.items()
            ],
        )
    )
    print(
        f"\nWhole history (seed's aget_previous_messages, {conversation.message_count:,} "
        f"messages loaded and decoded): median {fmt_ms(whole.median)} ms over {whole.count} runs"
    )

    selector_cells = rows["selector message_page"]
    rest_cells = rows["REST (ASGI, in process)"]
    tree_selector = rows["selector, branched tree"]
    tree_rest = rows["REST (ASGI), branched tree"]
    deepest_drf = rows["DRF PageNumberPagination"]["newest"].median
    deepest_drf_http = rows["DRF page-number endpoint (ASGI)"]["newest"].median
    graphql_cells = rows.get("GraphQL messages (ASGI)")
    checks = [
        Target(
            "oldest page within 1.2x of the newest (selector)",
            selector_cells["oldest"].median / selector_cells["newest"].median,
            1.2,
            "<=",
        ),
        Target(
            "oldest page within 1.2x of the newest (REST)",
            rest_cells["oldest"].median / rest_cells["newest"].median,
            1.2,
            "<=",
        ),
        Target(
            "selector vs the raw floor (worst depth)",
            max(selector_cells[d].median / floor[d].median for d in DEPTHS),
            1.5,
            "<=",
        ),
        Target(
            "REST end to end vs the raw floor (worst depth)",
            max(rest_cells[d].median / floor[d].median for d in DEPTHS),
            3.0,
            "<=",
        ),
        Target(
            "GraphQL messages vs the raw floor (worst depth)",
            max(graphql_cells[d].median / floor[d].median for d in DEPTHS)
            if graphql_cells
            else float("nan"),
            5.0,
            "<=",
        ),
        Target(
            "deepest page vs DRF page numbers (selector vs paginator)",
            deepest_drf / selector_cells["oldest"].median,
            100.0,
            ">=",
        ),
        Target(
            "deepest page vs DRF page numbers (REST vs DRF endpoint)",
            deepest_drf_http / rest_cells["oldest"].median,
            100.0,
            ">=",
        ),
        Target(
            "branched tree vs linear, same depth (selector, worst depth)",
            max(tree_selector[d].median / selector_cells[d].median for d in DEPTHS),
            1.5,
            "<=",
        ),
        Target(
            "branched tree vs linear, same depth (REST, worst depth)",
            max(tree_rest[d].median / rest_cells[d].median for d in DEPTHS),
            1.5,
            "<=",
        ),
        Target(
            "branched tree: oldest page within 1.2x of the newest (selector)",
            tree_selector["oldest"].median / tree_selector["newest"].median,
            1.2,
            "<=",
        ),
        Target(
            "branched tree: oldest page within 1.2x of the newest (REST)",
            tree_rest["oldest"].median / tree_rest["newest"].median,
            1.2,
            "<=",
        ),
        Target(
            "whole-history load vs one REST page",
            whole.median / rest_cells["newest"].median,
            float("nan"),
            "info",
        ),
    ]
    print(
        json.dumps(
            {name: {d: round(cells[d].median, 3) for d in DEPTHS} for name, cells in rows.items()}
            | {"whole history": round(whole.median, 1)}
        )
    )
    print_targets("bench.history_paging", checks)


if __name__ == "__main__":
    main()
