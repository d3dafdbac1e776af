"""The search read: the user's messages matching a query, best first, keyset-paged on
(rank, id), with the list's filters; each result with its conversation and a snippet."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from conversations.feedback.selectors import attach_feedback
from conversations.inputs import NO_PROJECT, ProjectFilter
from conversations.models import Conversation, ConversationMessage
from conversations.search.text import (
    ParsedQuery,
    fts5_query,
    parse_query,
    snippet,
    websearch_text,
)
from core.errors import ValidationFailed

MESSAGES = ConversationMessage._meta.db_table
CONVERSATIONS = Conversation._meta.db_table
FTS = "conversations_message_fts"


@dataclass(frozen=True)
class SearchCursor:
    """The position after a result: its rank and id (ranks descending, then ids)."""

    rank: float
    id: int

    def encode(self) -> str:
        raw = f"r1|{self.rank!r}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, *, field: str = "cursor") -> SearchCursor:
        try:
            if len(value) > 100:
                raise ValueError
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            version, rank, pk = raw.split("|")
            parsed = cls(rank=float(rank), id=int(pk))
            if version != "r1" or not math.isfinite(parsed.rank) or parsed.id < 0:
                raise ValueError
            return parsed
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise ValidationFailed.for_field(field, "invalid", f"{field} is not valid.") from None


@dataclass(frozen=True)
class SearchRequest:
    """A parsed search: the query text and the filters (see `inputs.parse_search_request`)."""

    q: str
    size: int
    cursor: SearchCursor | None = None
    agent: str | None = None
    project: ProjectFilter = None
    role: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class SearchResult:
    message: ConversationMessage  # its conversation joined
    snippet: str


@dataclass
class SearchPage:
    results: list[SearchResult] = field(default_factory=list)
    next_cursor: str | None = None
    has_more: bool = False


def _filters(request: SearchRequest, owner_id: int) -> tuple[list[str], list[Any]]:
    """SQL conditions on `m` (message) and `c` (conversation), and their parameters."""
    where, params = ["m.user_id = %s"], [owner_id]
    if request.role:
        where.append("m.role = %s")
        params.append(request.role)
    if request.since is not None:
        where.append("m.created_at >= %s")
        params.append(request.since)
    if request.until is not None:
        where.append("m.created_at < %s")
        params.append(request.until)
    if request.agent:
        where.append("c.agent_id = (SELECT id FROM conversations_agent WHERE slug = %s)")
        params.append(request.agent)
    if request.project is NO_PROJECT:
        where.append("c.project_id IS NULL")
    elif request.project is not None:
        where.append("c.project_id = %s")
        params.append(request.project)
    return where, params


def _postgres(
    request: SearchRequest, parsed: ParsedQuery, owner_id: int
) -> tuple[str, list[Any]] | None:
    if parsed.empty:
        return None
    where, params = _filters(request, owner_id)
    # `search_vector` is a stored generated column (migration 0010_organize_search): the
    # rank reads it instead of computing the vector again for every matching row. The
    # tsqueries are written inline (not in a CTE): as constants the planner estimates
    # how many rows a word matches and picks the search index alone for a rare word.
    match = "m.search_vector @@ websearch_to_tsquery('simple'::regconfig, %s)"
    rank = "ts_rank(m.search_vector, websearch_to_tsquery('simple'::regconfig, %s))"
    ranking = websearch_text(parsed, positive_only=True)
    sql = (
        f"SELECT m.id, {rank}::float8 AS rank "
        f'FROM "{MESSAGES}" m JOIN "{CONVERSATIONS}" c ON c.id = m.conversation_id '
        f"WHERE {match} AND " + " AND ".join(where)
    )
    params = [ranking, websearch_text(parsed), *params]
    # ts_rank is a real: compared as real, a cursor's rank equals its row's.
    return _paged(sql, params, request, rank=(rank, [ranking]), cast="::real")


def _sqlite(
    request: SearchRequest, parsed: ParsedQuery, owner_id: int
) -> tuple[str, list[Any]] | None:
    match = fts5_query(parsed)
    if match is None:
        return None
    where, params = _filters(request, owner_id)
    sql = (
        f"SELECT m.id, f.rank AS rank FROM (SELECT rowid, -bm25({FTS}) AS rank FROM {FTS} "
        f"WHERE {FTS} MATCH %s) f "
        f'JOIN "{MESSAGES}" m ON m.id = f.rowid '
        f'JOIN "{CONVERSATIONS}" c ON c.id = m.conversation_id '
        "WHERE " + " AND ".join(where)
    )
    return _paged(sql, [match, *params], request, rank=("f.rank", []), cast="")


def _paged(
    sql: str,
    params: list[Any],
    request: SearchRequest,
    *,
    rank: tuple[str, list[Any]],
    cast: str,
) -> tuple[str, list[Any]]:
    """The statement with the cursor's keyset condition, the order and the limit."""
    expression, rank_params = rank
    if request.cursor is not None:
        sql += f" AND ({expression} < %s{cast} OR ({expression} = %s{cast} AND m.id < %s))"
        cursor = request.cursor
        params = [*params, *rank_params, cursor.rank, *rank_params, cursor.rank, cursor.id]
    sql += " ORDER BY rank DESC, m.id DESC LIMIT %s"
    return sql, [*params, request.size + 1]


def search_messages(*, user: Any, request: SearchRequest) -> SearchPage:
    """One page of the user's messages matching `request.q`, best match first. Only the
    user's own messages are ever read (the owner is a condition of the statement)."""
    if not getattr(user, "is_authenticated", False):
        return SearchPage()
    parsed = parse_query(request.q)
    build = _postgres if connection.vendor == "postgresql" else _sqlite
    statement = build(request, parsed, user.pk)
    if statement is None:
        return SearchPage()
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        hits = [(row[0], float(row[1])) for row in cursor.fetchall()]
    has_more = len(hits) > request.size
    hits = hits[: request.size]
    messages = ConversationMessage.objects.select_related("conversation").in_bulk(
        [pk for pk, _ in hits]
    )
    attach_feedback(list(messages.values()))
    results = [
        SearchResult(
            message=messages[pk], snippet=snippet(messages[pk].text, parsed.positive_words)
        )
        for pk, _ in hits
        if pk in messages
    ]
    last = hits[-1] if hits else None
    return SearchPage(
        results=results,
        next_cursor=SearchCursor(rank=last[1], id=last[0]).encode() if has_more and last else None,
        has_more=has_more,
    )
