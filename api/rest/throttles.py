"""Rate limits of the REST API (rates: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]).

- `user`: every endpoint, per user (per client IP before sign-in);
- `turns`: the endpoints that start a turn (send, regenerate), per user;
- `login`: token requests, per client IP and username;
- `register`: sign-ups, per client IP.

Rates are read when a request is checked, not at import, so a changed setting
applies at once. The client IP is REMOTE_ADDR unless REST_FRAMEWORK
["NUM_PROXIES"] says how many proxies to trust in X-Forwarded-For (DRF would
otherwise trust any X-Forwarded-For, and a client could dodge the login limit
by inventing addresses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ConfabThrottle(SimpleRateThrottle):
    """A scoped rate from settings, read per request."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

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
            return self.key(f"user-{user.pk}")
        return self.key(f"ip-{self.get_ident(request)}")


class TurnsThrottle(ConfabThrottle):
    scope = "turns"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = request.user
        if not (user and user.is_authenticated):
            return None
        return self.key(f"user-{user.pk}")


class LoginThrottle(ConfabThrottle):
    """Per (client IP, username): guessing one account's password is slow, while
    other users behind the same address (an office, a carrier NAT) keep signing in."""

    scope = "login"

    def get_cache_key(self, request: Any, view: Any) -> str:
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        username = username if isinstance(username, str) else ""
        digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return self.key(f"{self.get_ident(request)}-{digest}")


class RegisterThrottle(ConfabThrottle):
    scope = "register"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.key(self.get_ident(request))
