"""HTTP middleware of the API surfaces."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from conversations.errors import ServiceUnavailable

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """While the database is unreachable, answer 503 in the error shape, not 500.

    The broken connection is closed so the next request reconnects once the
    database is back.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError):
            return None
        logger.warning("Database unavailable: %s", type(exception).__name__)
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()
        error = ServiceUnavailable("The database is unavailable. Retry shortly.")
        response = JsonResponse(error.as_dict(), status=error.status)
        response["Retry-After"] = "5"
        return response
