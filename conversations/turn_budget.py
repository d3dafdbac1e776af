"""The per-user turn budget: how many turns a user may start per period.

One budget per user, whichever surface starts the turn: REST (`TurnsThrottle`
in api/rest/throttles.py delegates here), GraphQL (api/graphql/mutations/turns.py)
and the chat websocket (conversations/consumers.py) all call this module.

- The rate is the `turns` entry of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
  (CONFAB_THROTTLE_TURNS, e.g. "30/min"), read at every check, so a changed
  setting applies at once; no rate means no limit.
- Turns are counted per user in fixed windows of the rate's period, in one
  atomic counter of the default cache, `rate_turns_user-<id>`
  (`core.cache.count_hit`, the counter of the REST throttles): simultaneous
  starts from many devices are each counted. A window starts at its first turn;
  around the moment one ends and the next begins, up to twice the rate may start.
- Anonymous callers are not counted (no surface starts a turn for them).
- While the cache is unreachable (Redis down), the budget is not applied
  (logged): turns are stored in PostgreSQL, and an outage of the cache must not
  stop users from chatting.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from redis.exceptions import RedisError

from core.cache import count_hit
from core.errors import RateLimited

logger = logging.getLogger(__name__)

SCOPE = "turns"
# What a cache backend raises when its server is unreachable.
CACHE_ERRORS = (RedisError, OSError)
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Decision:
    """Whether a turn may start now; when not, `wait` is the seconds until one may."""

    allowed: bool
    wait: float = 0.0


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
    return f"rate_{SCOPE}_user-{user_id}"


def spend(user: Any) -> Decision:
    """Count a turn the user starts now; refused past the rate (a refused attempt counts
    too, which changes nothing: the window ends when it would have anyway)."""
    configured = rate()
    if configured is None or not getattr(user, "is_authenticated", False):
        return ALLOWED
    num_turns, duration = parse_rate(configured)
    try:
        count, window_left = count_hit(caches["default"], cache_key(user.pk), duration)
    except CACHE_ERRORS as exc:
        logger.warning("Rate limit %s not applied: the cache is unreachable (%r)", SCOPE, exc)
        return ALLOWED
    if count > num_turns:
        return Decision(allowed=False, wait=window_left)
    return ALLOWED


def check(user: Any) -> None:
    """Spend a turn of the user's budget, or raise RateLimited (`extra["retry_after"]`:
    whole seconds to wait)."""
    decision = spend(user)
    if not decision.allowed:
        raise RateLimited(
            "Too many turns; retry later.",
            extra={"retry_after": max(1, math.ceil(decision.wait))},
        )


async def acheck(user: Any) -> None:
    """`check` from async code (the cache client is synchronous)."""
    await sync_to_async(check)(user)
