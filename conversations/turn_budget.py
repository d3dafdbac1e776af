"""The per-user turn budget: how many turns a user may start per period.

One budget per user, whichever surface starts the turn: REST (`TurnsThrottle`
in api/rest/throttles.py delegates here), GraphQL (api/graphql/mutations/turns.py)
and the chat websocket (conversations/consumers.py) all call this module.

- The rate is the `turns` entry of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
  (CONFAB_THROTTLE_TURNS, e.g. "30/min"), read at every check, so a changed
  setting applies at once; no rate means no limit.
- Each user's recent turn start times are kept in the default cache under
  `throttle_turns_user-<id>` (the key and the sliding-window history that DRF's
  SimpleRateThrottle uses, so processes of an earlier release count on the
  same budget during a rolling deploy).
- Anonymous callers are not counted (no surface starts a turn for them).
- While the cache is unreachable (Redis down), the budget is not applied
  (logged): turns are stored in PostgreSQL, and an outage of the cache must not
  stop users from chatting.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from conversations.errors import RateLimited

logger = logging.getLogger(__name__)

SCOPE = "turns"
# What a cache backend raises when its server is unreachable.
CACHE_ERRORS = (RedisError, OSError)
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Decision:
    """Whether a turn may start now; when not, `wait` is the seconds until one may
    (None when unknown: the rate was lowered below the turns already counted)."""

    allowed: bool
    wait: float | None = None


ALLOWED = Decision(allowed=True)


def rate() -> str | None:
    """The configured rate, "<turns>/<period>" (period: s, m, h or d, or a word starting
    with one), or None for no limit."""
    rest_framework = getattr(settings, "REST_FRAMEWORK", {})
    return rest_framework.get("DEFAULT_THROTTLE_RATES", {}).get(SCOPE)


def parse_rate(value: str) -> tuple[int, int]:
    """(turns, period in seconds) of a rate such as "30/min"."""
    num, period = value.split("/")
    return int(num), PERIODS[period[0]]


def cache_key(user_id: Any) -> str:
    return f"throttle_{SCOPE}_user-{user_id}"


def spend(user: Any) -> Decision:
    """Count a turn the user starts now, if the budget allows one (a refused attempt is
    not counted)."""
    configured = rate()
    if configured is None or not getattr(user, "is_authenticated", False):
        return ALLOWED
    num_turns, duration = parse_rate(configured)
    key = cache_key(user.pk)
    try:
        history: list[float] = cache.get(key, [])
        now = time.time()
        # Newest first: drop the turns that left the window.
        while history and history[-1] <= now - duration:
            history.pop()
        if len(history) >= num_turns:
            return Decision(allowed=False, wait=_wait(history, now, num_turns, duration))
        history.insert(0, now)
        cache.set(key, history, duration)
    except CACHE_ERRORS as exc:
        logger.warning("Rate limit %s not applied: the cache is unreachable (%r)", SCOPE, exc)
    return ALLOWED


def _wait(history: list[float], now: float, num_turns: int, duration: int) -> float | None:
    remaining = duration - (now - history[-1]) if history else duration
    available = num_turns - len(history) + 1
    if available <= 0:
        return None
    return remaining / float(available)


def check(user: Any) -> None:
    """Spend a turn of the user's budget, or raise RateLimited (`extra["retry_after"]`:
    whole seconds to wait, or None)."""
    decision = spend(user)
    if not decision.allowed:
        wait = decision.wait
        raise RateLimited(
            "Too many turns; retry later.",
            extra={"retry_after": math.ceil(wait) if wait is not None else None},
        )


async def acheck(user: Any) -> None:
    """`check` from async code (the cache client is synchronous)."""
    await sync_to_async(check)(user)
