"""The usage report's query: `from` and `to` (UTC days, inclusive) and `group_by`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from conversations.usage import quota
from conversations.usage.selectors import GROUPS
from core.errors import ValidationFailed

# The longest report: a year and a day (the roll-up keeps every day; this bounds a read).
MAX_DAYS = 366


@dataclass(frozen=True)
class UsageQuery:
    start: date
    end: date
    group_by: str


def _day(field: str, value: Any, default: date) -> date:
    if value in (None, ""):
        return default
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} must be a date (YYYY-MM-DD)."
        ) from None


def parse_usage_query(*, start: Any = None, end: Any = None, group_by: Any = None) -> UsageQuery:
    """Defaults: this UTC month up to today, grouped by day."""
    moment = quota.now()
    first = _day("from", start, quota.period_start("month", moment))
    last = _day("to", end, quota.period_start("day", moment))
    if last < first:
        raise ValidationFailed.for_field("to", "invalid", "to must not be before from.")
    if last - first > timedelta(days=MAX_DAYS - 1):
        raise ValidationFailed.for_field(
            "to", "invalid", f"A report covers at most {MAX_DAYS} days."
        )
    group_by = group_by or "day"
    if group_by not in GROUPS:
        raise ValidationFailed.for_field(
            "group_by", "invalid_choice", "group_by must be day, model or conversation."
        )
    return UsageQuery(start=first, end=last, group_by=group_by)
