"""Turn rate limit shared with REST: GraphQL must not be a way around it.

The `turns` rate of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read per call, on
the cache key REST's turn throttle uses (`throttle_turns_user-<id>`), so both
surfaces draw on one budget per user.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from asgiref.sync import sync_to_async
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from api.rest.throttles import CACHE_ERRORS, cache_unavailable
from conversations.errors import RateLimited


class TurnRateThrottle(SimpleRateThrottle):
    scope = "turns"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not getattr(request.user, "is_authenticated", False):
            return None
        return self.cache_format % {"scope": self.scope, "ident": f"user-{request.user.pk}"}


def _check(user: Any) -> None:
    throttle = TurnRateThrottle()
    try:
        allowed = throttle.allow_request(SimpleNamespace(user=user), None)
    except CACHE_ERRORS as exc:
        allowed = cache_unavailable(throttle.scope, exc)  # as REST does
    if not allowed:
        wait = throttle.wait()
        raise RateLimited(
            "Too many turns; retry later.",
            extra={"retry_after": math.ceil(wait) if wait is not None else None},
        )


async def check_turn_rate(user: Any) -> None:
    """RateLimited (with `retry_after` seconds) when the user started too many turns."""
    await sync_to_async(_check)(user)
