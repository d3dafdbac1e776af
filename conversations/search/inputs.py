"""Parsing of a search request (REST query parameters, GraphQL arguments)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from conversations.inputs import MAX_SEARCH_CHARS, parse_limit, parse_project_filter
from conversations.models import MessageRole
from conversations.search.selectors import SearchCursor, SearchRequest
from core.errors import ValidationFailed

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,64}")


def parse_moment(value: Any, *, field: str, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 date or date-time (UTC when it has no offset). As an (exclusive) upper
    bound, a bare date means the start of the next day: the whole day is included."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    moment = None
    try:
        moment = parse_datetime(text)
        if moment is None and (day := parse_date(text)) is not None:
            moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
    except ValueError:
        moment = None
    if moment is None:
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} must be an ISO 8601 date or date-time."
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_search_request(
    *,
    q: Any,
    limit: Any = None,
    cursor: Any = None,
    agent: Any = None,
    project: Any = None,
    role: Any = None,
    since: Any = None,
    until: Any = None,
    query_field: str = "q",
    limit_field: str = "limit",
    cursor_field: str = "cursor",
) -> SearchRequest:
    """The search request a client sent; each bad value is a field error naming it (the
    `*_field` names: GraphQL calls its arguments query/first/after)."""
    text = str(q or "").strip()
    if not text:
        raise ValidationFailed.for_field(query_field, "required", f"{query_field} is required.")
    if len(text) > MAX_SEARCH_CHARS:
        raise ValidationFailed.for_field(
            query_field,
            "too_long",
            f"{query_field} is longer than {MAX_SEARCH_CHARS} characters.",
        )
    if role not in (None, "") and role not in MessageRole.values:
        raise ValidationFailed.for_field(
            "role", "invalid", f"role must be one of {', '.join(MessageRole.values)}."
        )
    if agent not in (None, "") and not SLUG.fullmatch(str(agent)):
        raise ValidationFailed.for_field("agent", "invalid", "agent must be an agent's slug.")
    start = parse_moment(since, field="since")
    end = parse_moment(until, field="until", end_of_day=True)
    if start and end and start > end:
        raise ValidationFailed.for_field("until", "invalid", "until is before since.")
    return SearchRequest(
        q=text,
        size=parse_limit(limit, field=limit_field),
        cursor=SearchCursor.decode(cursor, field=cursor_field) if cursor else None,
        agent=agent or None,
        project=parse_project_filter(project),
        role=role or None,
        since=start,
        until=end,
    )
