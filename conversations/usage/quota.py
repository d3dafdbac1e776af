"""The limits in force for a user, and the quota's periods.

Periods are UTC calendar days and months: a day's quota resets at 00:00 UTC, a
month's on the 1st at 00:00 UTC. Each limit (tokens or cost, per day or per month) is
the user's override (`UserQuota`), else the CONFAB_QUOTA_* default; None: no limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings

from conversations.usage.models import UserQuota

PERIODS = ("day", "month")
METRICS = ("tokens", "cost")


@dataclass(frozen=True)
class Limits:
    """The four limits of a user (None: unlimited)."""

    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    cost_per_day: Decimal | None = None
    cost_per_month: Decimal | None = None

    def get(self, metric: str, period: str) -> Any:
        return getattr(self, f"{metric}_per_{period}")

    @property
    def any(self) -> bool:
        return any(self.get(m, p) is not None for m in METRICS for p in PERIODS)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def default_limits() -> Limits:
    return Limits(
        tokens_per_day=settings.CONFAB_QUOTA_TOKENS_PER_DAY,
        tokens_per_month=settings.CONFAB_QUOTA_TOKENS_PER_MONTH,
        cost_per_day=_decimal(settings.CONFAB_QUOTA_COST_PER_DAY),
        cost_per_month=_decimal(settings.CONFAB_QUOTA_COST_PER_MONTH),
    )


def limits_of(override: UserQuota | None) -> Limits:
    """The limits in force: the override's fields where set, the defaults elsewhere."""
    defaults = default_limits()
    if override is None:
        return defaults
    if override.unlimited:
        return Limits()
    values = {}
    for metric in METRICS:
        for period in PERIODS:
            name = f"{metric}_per_{period}"
            own = getattr(override, name)
            values[name] = own if own is not None else getattr(defaults, name)
    return Limits(**values)


def now() -> datetime:
    return datetime.now(UTC)


def period_start(period: str, moment: datetime) -> date:
    day = moment.astimezone(UTC).date()
    return day if period == "day" else day.replace(day=1)


def resets_at(period: str, moment: datetime) -> datetime:
    """When the period containing `moment` ends (the next one starts)."""
    start = period_start(period, moment)
    if period == "day":
        end = start + timedelta(days=1)
    else:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def turn_reserve_tokens() -> int:
    """Tokens an admitted turn counts for until it ends (its reservation)."""
    return max(0, int(settings.CONFAB_QUOTA_TURN_RESERVE_TOKENS))
