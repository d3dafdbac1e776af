"""Writes of usage and quotas: record a model call, admit a turn under the quota.

Both run inside the transaction of the turn write that causes them (the caller's
`@write`): a call's usage is stored with its reply, a turn's reservation with its
human message, so neither exists without the other.

The quota's admission rule: a turn is admitted while, for every limit in force,
`used + reserved < limit`, where `used` is what the period's calls cost so far (the
roll-up) and `reserved` is what the user's turns in flight count for (each turn
CONFAB_QUOTA_TURN_RESERVE_TOKENS tokens, and those tokens at its model's dearest
price). A turn's real usage may pass its reservation: it still finishes (no reply is
cut); the next turn sees the overrun. Admissions of one user run one at a time: each
locks the user's `UserQuota` row (`select_for_update`; SQLite's IMMEDIATE
transactions serialise writers anyway), and a reserved turn's last write takes the
same lock, records its usage and deletes its reservation before it releases its
conversation, so an admission never sees a turn neither as reserved nor as used. A
turn that took no reservation (no limit applied when it began) takes no lock: with no
quotas, a turn pays one admission read and its usage rows, nothing more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from conversations.usage import quota
from conversations.usage.models import (
    QuotaReservation,
    UsageDay,
    UsageKind,
    UsageRecord,
    UserQuota,
)
from conversations.usage.prices import MILLION, Prices
from conversations.usage.selectors import QuotaState, quota_state
from core.errors import QuotaExceeded

# The wait a refusal names when only turns in flight fill the quota (they end soon).
IN_FLIGHT_RETRY_SECONDS = 5


@dataclass(frozen=True)
class Charge:
    """Who pays for a turn's model calls, as which kind, for which model, at what prices."""

    user_id: Any
    kind: str
    model: str
    prices: Prices
    # The turn holds a quota reservation, settled by its last write. True unless the
    # admission said otherwise: a queued or resumed turn's reservation was taken earlier.
    reserved: bool = True


def record_call(
    *, charge: Charge, conversation_id: int | None, message_id: int | None, message: Any
) -> UsageRecord | None:
    """Record one model call from its reply's `usage_metadata` (LangChain's token counts,
    as the provider reported them); None when it reported none."""
    usage = getattr(message, "usage_metadata", None) or {}
    input_tokens = int(usage.get("input_tokens") or 0)
    output_tokens = int(usage.get("output_tokens") or 0)
    if not (input_tokens or output_tokens):
        return None
    return record_usage(
        user_id=charge.user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        model=charge.model,
        kind=charge.kind,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=charge.prices.cost(input_tokens, output_tokens),
    )


@transaction.atomic
def record_title_call(
    *, charge: Charge, conversation_id: int | None, message: Any
) -> UsageRecord | None:
    """Record an automatic title's model call (conversations/titles), in a transaction of
    its own, as kind `title` at the prices of the turn that led to it."""
    return record_call(
        charge=replace(charge, kind=UsageKind.TITLE),
        conversation_id=conversation_id,
        message_id=None,
        message=message,
    )


def record_usage(
    *,
    user_id: Any,
    conversation_id: int | None,
    message_id: int | None,
    model: str,
    kind: str,
    input_tokens: int,
    output_tokens: int,
    cost: Decimal,
    at: datetime | None = None,
) -> UsageRecord:
    """Store a call in the ledger and add it to its day's roll-up row (one upsert)."""
    at = at or timezone.now()
    record = UsageRecord.objects.create(
        user_id=user_id,
        conversation_id=conversation_id,
        message_id=message_id,
        model=model,
        kind=kind,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
        created_at=at,
    )
    add_to_day(
        user_id=user_id,
        day=quota.period_start("day", at),
        model=model,
        conversation_id=conversation_id or 0,
        calls=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
    )
    return record


def add_to_day(
    *,
    user_id: Any,
    day: Any,
    model: str,
    conversation_id: int,
    calls: int,
    input_tokens: int,
    output_tokens: int,
    cost: Decimal,
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE with increments: one statement, no read, and two
    writers of one row add up (PostgreSQL and SQLite both have it)."""
    table = connection.ops.quote_name(UsageDay._meta.db_table)
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "
            "(user_id, day, model, conversation_id, calls, input_tokens, output_tokens, cost) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (user_id, day, model, conversation_id) DO UPDATE SET "
            f"calls = {table}.calls + excluded.calls, "
            f"input_tokens = {table}.input_tokens + excluded.input_tokens, "
            f"output_tokens = {table}.output_tokens + excluded.output_tokens, "
            f"cost = {table}.cost + excluded.cost",
            [
                user_id,
                ops.adapt_datefield_value(day),
                model,
                conversation_id,
                calls,
                input_tokens,
                output_tokens,
                ops.adapt_decimalfield_value(cost, 20, 10),
            ],
        )


def settle_reservation(*, user_id: Any, turn_id: Any) -> None:
    """A reserved turn's last write: under the user's quota lock, its reservation goes
    (its usage is recorded in the same transaction; see the module docstring)."""
    UserQuota.objects.select_for_update().filter(user_id=user_id).values_list("pk").first()
    QuotaReservation.objects.filter(turn_id=turn_id).delete()


def admit(*, user_id: Any, conversation_id: int, turn_id: Any, prices: Prices) -> bool:
    """Admit a turn under the user's quota, or raise QuotaExceeded (429); whether it took
    a reservation (none when no limit applies). Call inside the transaction that begins
    the turn: its reservation is stored with it, and a refusal rolls everything back."""
    override = UserQuota.objects.select_for_update().filter(user_id=user_id).first()
    limits = quota.limits_of(override)
    if not limits.any:
        return False
    if override is None:
        UserQuota.objects.select_for_update().get_or_create(user_id=user_id)
    moment = quota.now()
    state = quota_state(user_id, limits=limits, moment=moment, prune=True)
    refused = exceeded(state)
    if refused is not None:
        period, metric = refused
        resets = quota.resets_at(period, moment)
        wait = math.ceil((resets - moment).total_seconds())
        if not state.is_used_up(period, metric):
            # Spent only by turns in flight: their reservations end with them, long
            # before the period does (`resets_at` stays the latest it can take).
            wait = min(wait, IN_FLIGHT_RETRY_SECONDS)
        raise QuotaExceeded(
            extra={
                "retry_after": max(1, wait),
                "resets_at": resets.isoformat().replace("+00:00", "Z"),
                "period": period,
                "metric": metric,
            }
        )
    tokens = quota.turn_reserve_tokens()
    QuotaReservation.objects.create(
        user_id=user_id,
        conversation_id=conversation_id,
        turn_id=turn_id,
        tokens=tokens,
        cost=Decimal(tokens) * prices.dearest_per_million / MILLION,
    )
    return True


def exceeded(state: QuotaState) -> tuple[str, str] | None:
    """The spent (period, metric) a turn waits for, or None: a turn may start. One used
    up by recorded usage before one spent only by the turns in flight; of those, the one
    that resets last (days come before months)."""
    spent = [(p, m) for p in quota.PERIODS for m in quota.METRICS if state.is_spent(p, m)]
    if not spent:
        return None
    used_up = [pair for pair in spent if state.is_used_up(*pair)]
    return (used_up or spent)[-1]
