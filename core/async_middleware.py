"""The base of Confab's own Django middleware (sync and async chains alike)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest


class AsyncCapableMiddleware:
    """Base of Confab's own Django middleware: usable in a sync chain (WSGI, the test
    client) and an async one (ASGI) alike. A sync-only middleware would make Django run
    the whole chain in a thread and hop back to the event loop for every async view.
    Subclasses define `__call__` for the sync chain and `__acall__` for the async one."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
