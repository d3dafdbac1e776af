"""Rate limits of the REST API (rates: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]).

- `user`: every endpoint, per user (per client IP before sign-in); GraphQL operations
  spend the same budget (`spend_user_requests`: one per operation, one per mutation
  field);
- `turns`: the rate of `conversations.turn_budget`, spent by `start_turn` whichever
  surface starts the turn (not a DRF throttle: it is checked after validation);
- `login`: token requests, per client IP and username;
- `register`: sign-ups, per client IP.

Every scope counts in fixed windows with one atomic counter (`ConfabThrottle`).
Rates are read when a request is checked, not at import, so a changed setting
applies at once. The client IP is REMOTE_ADDR unless REST_FRAMEWORK
["NUM_PROXIES"] says how many proxies to trust in X-Forwarded-For (DRF would
otherwise trust any X-Forwarded-For, and a client could dodge the login limit
by inventing addresses).

While the cache is unreachable (Redis down), `login` and `register` answer 503
and the other scopes are not applied (logged): see `cache_unavailable` (and
`conversations.turn_budget` for `turns`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from django.core.cache import caches
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.services import username_key
from conversations import turn_budget
from core.cache import count_hit
from core.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

# What a cache backend raises when its server is unreachable.
CACHE_ERRORS = turn_budget.CACHE_ERRORS


# Scopes that refuse (503) rather than let requests through while the cache that
# counts them is unreachable: unlimited password guessing is not an acceptable
# way to degrade. The others let requests through (logged): the data is still
# served by the database, and an outage of the cache must not take the API down.
FAIL_CLOSED_SCOPES = frozenset({"login", "register"})
CACHE_UNAVAILABLE_RETRY_AFTER = 5


def cache_unavailable(scope: str, exc: BaseException) -> bool:
    """What a throttle does when its cache (Redis) fails: True lets the request through;
    for fail-closed scopes it raises ServiceUnavailable (503, Retry-After)."""
    if scope in FAIL_CLOSED_SCOPES:
        logger.warning("Refusing %s: the rate-limit cache is unreachable (%r)", scope, exc)
        raise ServiceUnavailable(
            "This is unavailable for a moment. Retry shortly.",
            extra={"retry_after": CACHE_UNAVAILABLE_RETRY_AFTER},
        ) from exc
    logger.warning("Rate limit %s not applied: the cache is unreachable (%r)", scope, exc)
    return True


class ConfabThrottle(SimpleRateThrottle):
    """A scoped rate from settings, read per request, counted in fixed windows: one
    atomic cache round trip per request (`core.cache.count_hit`), whatever the rate.

    DRF's sliding log reads, unpickles, appends to and writes back the time of every
    request in the window (up to the rate's size) on each request, and concurrent
    requests all read the log before any writes it back: 40 simultaneous requests
    against a rate of 10 all passed (tests/api/rest/test_throttles.py). The price of
    a window: up to twice the rate may pass around the moment one window ends and
    the next begins.
    """

    cache_format = "rate_%(scope)s_%(ident)s"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        return self.spend(key)

    def spend(self, key: str, hits: int = 1) -> bool:
        """Count `hits` requests on `key`: whether they fit the rate (`wait()` says how
        long until they would, when not)."""
        try:
            count, self.window_left = count_hit(caches["default"], key, self.duration, hits)
        except CACHE_ERRORS as exc:
            return cache_unavailable(self.scope, exc)
        return count <= self.num_requests

    def wait(self) -> float | None:
        return self.window_left

    def get_ident(self, request: Any) -> str:
        if api_settings.NUM_PROXIES is None:
            return request.META.get("REMOTE_ADDR") or "unknown"
        return super().get_ident(request)

    def key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class UserThrottle(ConfabThrottle):
    scope = "user"

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = request.user
        if user and user.is_authenticated:
            return self.user_key(user)
        return self.key(f"ip-{self.get_ident(request)}")

    def user_key(self, user: Any) -> str:
        return self.key(f"user-{user.pk}")


def spend_user_requests(user: Any, hits: int = 1) -> turn_budget.Decision:
    """Spend `hits` requests of an authenticated user's `user` budget, the one every REST
    request spends (GraphQL: one per operation, one per mutation field); refused past
    the rate. A refused spend counts too, as a refused REST request does."""
    throttle = UserThrottle()
    if throttle.rate is None or not getattr(user, "is_authenticated", False):
        return turn_budget.ALLOWED
    if throttle.spend(throttle.user_key(user), hits):
        return turn_budget.ALLOWED
    return turn_budget.Decision(allowed=False, wait=throttle.wait() or 0.0)


class LoginThrottle(ConfabThrottle):
    """Per (client IP, username): guessing one account's password is slow, while
    other users behind the same address (an office, a carrier NAT) keep signing in."""

    scope = "login"

    def get_cache_key(self, request: Any, view: Any) -> str:
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        return self.attempt_key(request, username if isinstance(username, str) else "")

    def attempt_key(self, request: Any, username: str) -> str:
        """The counter of sign-in attempts from this request's address on this username,
        shared by every way of signing in (REST, the admin's login, a password change):
        usernames are counted in their normalized, case-folded form, the form sign-in
        matches them in, so fullwidth `ALICE` and `alice` spend one budget."""
        digest = hashlib.sha256(username_key(username.strip()).encode()).hexdigest()[:32]
        return self.key(f"{self.get_ident(request)}-{digest}")

    def spend_attempt(self, request: Any, username: str) -> bool:
        """Count one attempt on `username` from `request` (a Django or DRF request);
        whether it is within the rate. Raises ServiceUnavailable while the cache is down."""
        if self.rate is None:
            return True
        return self.spend(self.attempt_key(request, username))


class PasswordChangeThrottle(LoginThrottle):
    """Password changes spend the signed-in user's sign-in attempts (per address and
    username): a stolen token cannot guess the current password faster than sign-in can."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.attempt_key(request, request.user.get_username())


class RegisterThrottle(ConfabThrottle):
    scope = "register"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.key(self.get_ident(request))


class SharedThrottle(ConfabThrottle):
    """Reads of shared conversations, per client IP: anyone may read a share, so
    anonymous readers get a budget of their own (not the signed-in users')."""

    scope = "shared"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.key(self.get_ident(request))
