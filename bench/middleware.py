"""Variants measured by the benchmarks (enabled by bench/settings.py toggles only)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from knox.auth import TokenAuthentication

from api.auth import BearerTokenAuthentication, split_authorization
from api.middleware import DatabaseUnavailableMiddleware as SyncDatabaseUnavailableMiddleware


class DatabaseUnavailableMiddleware(SyncDatabaseUnavailableMiddleware):
    """The same middleware, async-capable: Django then keeps async views (adrf) on the
    event loop instead of running the whole chain in a thread and hopping back."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return await self.get_response(request)


class _PresentedTokenOnly(TokenAuthentication):
    def _cleanup_token(self, auth_token: Any) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class LightBearerTokenAuthentication(BearerTokenAuthentication):
    """knox's check of the presented token only: knox's `_cleanup_token` also loads every
    token of the user on every request to delete expired ones (one more query)."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        token = split_authorization(header.encode("latin-1", "replace"))
        if token is None:
            return None
        return _PresentedTokenOnly().authenticate_credentials(token)
