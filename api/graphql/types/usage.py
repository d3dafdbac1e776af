"""Usage and quota, built from `conversations.usage.selectors` payloads (the REST shapes)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry


@strawberry.enum(description="How the usage report groups model calls.")
class UsageGroupBy(Enum):
    DAY = "day"
    MODEL = "model"
    CONVERSATION = "conversation"


@strawberry.type(description="Model calls, their tokens and what they cost (USD).")
class UsageTotals:
    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: Decimal

    @classmethod
    def fields_of(cls, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            name: payload[name]
            for name in ("calls", "input_tokens", "output_tokens", "total_tokens", "cost")
        }


@strawberry.type(description="One group of the usage report: a UTC day, a model or a conversation.")
class UsageGroup(UsageTotals):
    key: str = strawberry.field(
        description="The day (YYYY-MM-DD), the model, or the conversation's id "
        '("" outside a conversation).'
    )
    title: str | None = strawberry.field(
        description="The day, the model, or the conversation's title (null once deleted)."
    )


@strawberry.type(description="The user's usage from `start` to `end` (UTC days, inclusive).")
class UsageReport:
    start: date
    end: date
    group_by: UsageGroupBy
    groups: list[UsageGroup]
    totals: UsageTotals

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> UsageReport:
        return cls(
            start=date.fromisoformat(payload["start"]),
            end=date.fromisoformat(payload["end"]),
            group_by=UsageGroupBy(payload["group_by"]),
            groups=[
                UsageGroup(key=g["key"], title=g["title"], **UsageTotals.fields_of(g))
                for g in payload["groups"]
            ],
            totals=UsageTotals(**UsageTotals.fields_of(payload["totals"])),
        )


@strawberry.type(description="A token quota: null limit and remaining when there is none.")
class QuotaTokens:
    limit: int | None
    used: int
    remaining: int | None


@strawberry.type(description="A cost quota in USD: null limit and remaining when there is none.")
class QuotaCost:
    limit: Decimal | None
    used: Decimal
    remaining: Decimal | None


@strawberry.type(description="One quota period, a UTC day or month.")
class QuotaPeriod:
    starts_at: datetime
    resets_at: datetime
    tokens: QuotaTokens
    cost: QuotaCost
    spent: bool = strawberry.field(description="A turn started now is refused (QUOTA_EXCEEDED).")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> QuotaPeriod:
        return cls(
            starts_at=_datetime(payload["starts_at"]),
            resets_at=_datetime(payload["resets_at"]),
            tokens=QuotaTokens(**payload["tokens"]),
            cost=QuotaCost(**payload["cost"]),
            spent=payload["spent"],
        )


@strawberry.type(description="The user's turns in flight and what they count for until they end.")
class QuotaInFlight:
    turns: int
    tokens: int
    cost: Decimal


@strawberry.type(description="The user's usage quota: used and left this UTC day and month.")
class Quota:
    day: QuotaPeriod
    month: QuotaPeriod
    in_flight: QuotaInFlight

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Quota:
        return cls(
            day=QuotaPeriod.from_payload(payload["day"]),
            month=QuotaPeriod.from_payload(payload["month"]),
            in_flight=QuotaInFlight(**payload["in_flight"]),
        )


def _datetime(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
