"""Reads of usage: the report (by day, model or conversation) and the quota's state.

Both read the daily roll-up (`UsageDay`), never the per-call ledger: a month of a
user's usage is at most 31 x models x conversations rows, whatever the number of calls
(bench/usage.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, Sum

from conversations.usage import quota
from conversations.usage.models import COST, QuotaReservation, UsageDay, UserQuota

GROUPS = ("day", "model", "conversation")
ZERO = Decimal(0)


def _tokens() -> Any:
    return F("input_tokens") + F("output_tokens")


def _totals(row: dict[str, Any]) -> dict[str, Any]:
    input_tokens = int(row.get("input_tokens") or 0)
    output_tokens = int(row.get("output_tokens") or 0)
    return {
        "calls": int(row.get("calls") or 0),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost": money(row.get("cost")),
    }


def money(value: Any) -> Decimal:
    """A cost as stored (ten places; SQLite sums come back as floats)."""
    if value is None:
        return ZERO.quantize(Decimal(1).scaleb(-COST["decimal_places"]))
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-COST["decimal_places"]))


def usage_report(*, user: Any, start: date, end: date, group_by: str) -> dict[str, Any]:
    """The user's tokens and cost from `start` to `end` (inclusive), per group and in
    total. Groups: a UTC day, a model, or a conversation (`title` None once deleted)."""
    rows = UsageDay.objects.filter(user_id=user.pk, day__gte=start, day__lte=end)
    key = {"day": "day", "model": "model", "conversation": "conversation_id"}[group_by]
    grouped = (
        rows.values(key)
        .annotate(
            calls=Sum("calls"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("cost"),
        )
        .order_by(key)
    )
    groups = [{"key": row[key], **_totals(row)} for row in grouped]
    titles: dict[int, str] = {}
    if group_by == "conversation":
        from conversations.models import Conversation

        ids = [group["key"] for group in groups if group["key"]]
        titles = dict(
            Conversation.objects.filter(user_id=user.pk, pk__in=ids).values_list("pk", "title")
        )
    results = []
    for group in groups:
        value = group.pop("key")
        label = None
        if group_by == "day":
            label = value.isoformat()
        elif group_by == "model":
            label = value
        elif value:
            label = titles.get(value)
        results.append({"key": _key(group_by, value), "title": label, **group})
    totals = _totals(
        {
            "calls": sum(g["calls"] for g in results),
            "input_tokens": sum(g["input_tokens"] for g in results),
            "output_tokens": sum(g["output_tokens"] for g in results),
            "cost": sum((g["cost"] for g in results), ZERO),
        }
    )
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "group_by": group_by,
        "groups": results,
        "totals": totals,
    }


def _key(group_by: str, value: Any) -> str:
    if group_by == "day":
        return value.isoformat()
    if group_by == "conversation":
        return str(value) if value else ""
    return str(value)


@dataclass
class QuotaState:
    """What a user used, holds in flight, and may use, per period and metric."""

    limits: quota.Limits
    moment: datetime
    used: dict[str, dict[str, Any]] = field(default_factory=dict)
    reserved: dict[str, Any] = field(default_factory=dict)
    in_flight: int = 0

    def is_spent(self, period: str, metric: str) -> bool:
        limit = self.limits.get(metric, period)
        if limit is None:
            return False
        return self.used[period][metric] + self.reserved[metric] >= limit

    def is_used_up(self, period: str, metric: str) -> bool:
        """Spent by recorded usage alone (not only by the turns in flight)."""
        limit = self.limits.get(metric, period)
        return limit is not None and self.used[period][metric] >= limit


def quota_state(
    user_id: Any,
    *,
    limits: quota.Limits | None = None,
    moment: datetime | None = None,
    prune: bool = False,
    reservations: bool = True,
) -> QuotaState:
    """The user's usage this UTC day and month (one aggregate over at most a month of
    roll-up rows) and the reservations of their turns in flight. `prune` (the admission,
    under the quota lock) deletes the reservations of turns that ended."""
    if limits is None:
        limits = quota.limits_of(UserQuota.objects.filter(user_id=user_id).first())
    moment = moment or quota.now()
    today = quota.period_start("day", moment)
    sums = UsageDay.objects.filter(
        user_id=user_id, day__gte=quota.period_start("month", moment), day__lte=today
    ).aggregate(
        month_tokens=Sum(_tokens()),
        month_cost=Sum("cost"),
        day_tokens=Sum(_tokens(), filter=Q(day=today)),
        day_cost=Sum("cost", filter=Q(day=today)),
    )
    state = QuotaState(limits=limits, moment=moment)
    for period in quota.PERIODS:
        state.used[period] = {
            "tokens": int(sums[f"{period}_tokens"] or 0),
            "cost": money(sums[f"{period}_cost"]),
        }
    live = live_reservations(user_id, prune=prune) if reservations else []
    state.in_flight = len(live)
    state.reserved = {
        "tokens": sum(tokens for tokens, _ in live),
        "cost": money(sum((Decimal(str(cost)) for _, cost in live), ZERO)),
    }
    return state


def quota_used_up(user_id: Any) -> bool:
    """Whether the user's recorded usage alone has reached one of their limits (a day's
    or a month's): then the server's own calls for them (automatic titles) are not made.
    One query when no limit applies."""
    limits = quota.limits_of(UserQuota.objects.filter(user_id=user_id).first())
    if not limits.any:
        return False
    state = quota_state(user_id, limits=limits, reservations=False)
    return any(state.is_used_up(p, m) for p in quota.PERIODS for m in quota.METRICS)


def live_reservations(user_id: Any, *, prune: bool = False) -> list[tuple[int, Any]]:
    """(tokens, cost) of the user's reservations whose turn is in flight: it holds its
    conversation's lock, or its message waits queued."""
    from conversations.models import Conversation, ConversationMessage, MessageStatus

    rows = list(
        QuotaReservation.objects.filter(user_id=user_id).values_list(
            "pk", "conversation_id", "turn_id", "tokens", "cost"
        )
    )
    if not rows:
        return []
    conversation_ids = {row[1] for row in rows}
    turn_ids = [row[2] for row in rows]
    alive = set(
        Conversation.objects.filter(
            pk__in=conversation_ids, active_turn_id__in=turn_ids
        ).values_list("active_turn_id", flat=True)
    )
    alive |= set(
        ConversationMessage.objects.filter(
            conversation_id__in=conversation_ids, turn_id__in=turn_ids, status=MessageStatus.QUEUED
        ).values_list("turn_id", flat=True)
    )
    dead = [row[0] for row in rows if row[2] not in alive]
    if prune and dead:
        QuotaReservation.objects.filter(pk__in=dead).delete()
    return [(row[3], row[4]) for row in rows if row[2] in alive]


def quota_payload(state: QuotaState) -> dict[str, Any]:
    """What is left of the quota, as every surface shows it (GET /api/v1/usage/quota/)."""
    periods = {}
    for period in quota.PERIODS:
        entry: dict[str, Any] = {
            "starts_at": _iso(quota.period_start(period, state.moment)),
            "resets_at": quota.resets_at(period, state.moment).isoformat().replace("+00:00", "Z"),
        }
        for metric in quota.METRICS:
            limit = state.limits.get(metric, period)
            used = state.used[period][metric]
            remaining = None
            if limit is not None:
                remaining = max(limit - used - state.reserved[metric], 0)
                if metric == "cost":
                    remaining = money(remaining)
                    limit = money(limit)
            entry[metric] = {"limit": limit, "used": used, "remaining": remaining}
        entry["spent"] = any(state.is_spent(period, metric) for metric in quota.METRICS)
        periods[period] = entry
    return {
        **periods,
        "in_flight": {
            "turns": state.in_flight,
            "tokens": state.reserved["tokens"],
            "cost": state.reserved["cost"],
        },
    }


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"
