"""Turn rate limit shared with REST and the chat websocket: GraphQL must not be a way
around it.

The per-user turn budget of `conversations.turn_budget` (the `turns` rate of
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]); a refusal is RateLimited
(`RATE_LIMITED`, `retryAfter`).
"""

from __future__ import annotations

from typing import Any

from conversations import turn_budget


async def check_turn_rate(user: Any) -> None:
    """RateLimited (with `retry_after` seconds) when the user started too many turns."""
    await turn_budget.acheck(user)
