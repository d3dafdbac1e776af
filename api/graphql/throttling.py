"""Turn rate limit shared with REST: GraphQL must not be a way around it.

DRF's user throttle with the `turns` scope (REST_FRAMEWORK's
DEFAULT_THROTTLE_RATES["turns"]) keys its history `throttle_turns_<user id>`
in the cache, the key REST's `ScopedRateThrottle(scope="turns")` uses too, so
both surfaces draw on one budget per user.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from asgiref.sync import sync_to_async
from rest_framework.throttling import UserRateThrottle

from conversations.errors import RateLimited


class TurnRateThrottle(UserRateThrottle):
    scope = "turns"


def _check(user: Any) -> None:
    throttle = TurnRateThrottle()
    if not throttle.allow_request(SimpleNamespace(user=user), None):
        wait = throttle.wait()
        raise RateLimited(
            "Too many turns; retry later.",
            extra={"retry_after": math.ceil(wait) if wait is not None else None},
        )


async def check_turn_rate(user: Any) -> None:
    """RateLimited (with `retry_after` seconds) when the user started too many turns."""
    await sync_to_async(_check)(user)
