"""Request ids: one id per HTTP request or websocket, on the response, in every log line.

Every response carries `X-Request-ID`: the client's own when it sent a sane one
(1-128 characters of letters, digits and `._:-`, so a log line cannot be forged
through it), else a new UUID. The id lives in a context variable for the whole
request (or websocket connection), so `RequestIdLogFilter` stamps it on every log
record, and `task_context()` carries it into the turn a request starts (turns run
in a fresh `contextvars.Context`, STACK.md #14): the turn's log lines have the id of
the request that started it. JSON error bodies (`{"type", "code", "detail"}`) also
get a `request_id` field, so a user's bug report names the log lines to read.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponseBase

from core.async_middleware import AsyncCapableMiddleware

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Error bodies larger than this are left as they are (they are never this large).
_MAX_ERROR_BODY = 64 * 1024

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "confab_request_id", default=None
)


def current() -> str | None:
    """The request id of the running request, websocket or turn (None outside them)."""
    return request_id_var.get()


def accept_or_make(value: str | bytes | None) -> str:
    """The client's id when it is sane, else a new one."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value and _SANE.match(value):
        return value
    return uuid.uuid4().hex


def task_context() -> contextvars.Context:
    """A fresh context for a background task (a turn) that keeps the request id and the
    current trace, and nothing else of the caller's context."""
    context = contextvars.Context()
    request_id = request_id_var.get()
    if request_id is not None:
        context.run(request_id_var.set, request_id)
    from core import tracing

    tracing.carry_into(context)
    return context


def add_to_error_body(response: HttpResponseBase, request_id: str) -> None:
    """Add `request_id` to a JSON error body of the documented shape, in place."""
    if response.status_code < 400 or response.streaming:
        return
    if not response.get("Content-Type", "").startswith("application/json"):
        return
    content = response.content  # type: ignore[attr-defined]
    if not content or len(content) > _MAX_ERROR_BODY:
        return
    try:
        body = json.loads(content)
    except ValueError:
        return
    if not isinstance(body, dict) or "code" not in body or "type" not in body:
        return
    body["request_id"] = request_id
    # For the refusal counter (core.metrics, which runs around this middleware).
    response.confab_error_code = body["code"]  # type: ignore[attr-defined]
    response.content = json.dumps(body, ensure_ascii=False).encode()  # type: ignore[attr-defined]
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))  # type: ignore[attr-defined]


class RequestIdMiddleware(AsyncCapableMiddleware):
    """Django middleware (first in MIDDLEWARE): set the request id, answer it in
    `X-Request-ID` and in JSON error bodies. Async-capable (no thread hop)."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        request_id = self._begin(request)
        token = request_id_var.set(request_id)
        try:
            return self._finish(self.get_response(request), request_id)
        finally:
            request_id_var.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request_id = self._begin(request)
        token = request_id_var.set(request_id)
        try:
            return self._finish(await self.get_response(request), request_id)
        finally:
            request_id_var.reset(token)

    @staticmethod
    def _begin(request: HttpRequest) -> str:
        request_id = accept_or_make(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        return request_id

    @staticmethod
    def _finish(response: HttpResponseBase, request_id: str) -> HttpResponseBase:
        response[HEADER] = request_id
        add_to_error_body(response, request_id)
        return response


class RequestIdWebsocketMiddleware:
    """ASGI, websockets: one request id per connection (the handshake's `X-Request-ID`
    when sane), for its log lines and the turns it starts."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        sent = dict(scope.get("headers") or []).get(HEADER.lower().encode())
        token = request_id_var.set(accept_or_make(sent))
        try:
            return await self.app(scope, receive, send)
        finally:
            request_id_var.reset(token)


class RequestIdLogFilter(logging.Filter):
    """Stamp `record.request_id` ("-" outside a request) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # django.request logs a response after the middleware returned: its record
            # carries the request.
            request = getattr(record, "request", None)
            record.request_id = request_id_var.get() or getattr(request, "request_id", None) or "-"
        return True
