"""Request body limits enforced at the ASGI level, before Django reads the body.

Django's ASGI handler reads the whole body into a temporary file (spooled to disk past
FILE_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB) before any middleware, authentication or view
runs; the size limits of the parsers (CONFAB_MAX_BODY_BYTES) applied only afterwards.
An unauthenticated 300 MB chunked POST left a 281 MB temp file before its 400.

`BodyLimitMiddleware` answers 413 at once when `Content-Length` is over the limit of the
request's path (the body is never read), and cuts a body without a length (chunked) off
as soon as it passes the limit while it streams: the application is told the client
went away (Django drops the request: nothing was parsed, and under the default limit
nothing reached the disk) and the client gets the 413, with `Connection: close`.

Limits are per path prefix (`CONFAB_BODY_LIMITS`, longest prefix wins; e.g. uploads
under `/api/v1/files/` get CONFAB_MAX_UPLOAD_BYTES), and CONFAB_MAX_BODY_BYTES
(DATA_UPLOAD_MAX_MEMORY_SIZE) elsewhere. Read per request.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from core.request_id import HEADER, accept_or_make

PAYLOAD_TOO_LARGE_DETAIL = "The request body is too large."


def body_limit(path: str) -> int | None:
    """The largest body accepted for `path`, in bytes (None: no limit)."""
    limits: dict[str, int] = getattr(settings, "CONFAB_BODY_LIMITS", {}) or {}
    matches = [prefix for prefix in limits if path.startswith(prefix)]
    if matches:
        return limits[max(matches, key=len)]
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large_body(path: str, request_id: str) -> bytes:
    """413 in the error shape of the surface: GraphQL's transport errors under /graphql,
    the REST shape elsewhere (docs/rest.md, docs/graphql.md), naming its request as
    every error does (answered here, before Django's request-id middleware runs)."""
    if path.startswith("/graphql"):
        extensions = {"code": "REQUEST_TOO_LARGE", "type": "invalid_request"}
        body: dict[str, Any] = {
            "errors": [{"message": PAYLOAD_TOO_LARGE_DETAIL, "extensions": extensions}]
        }
    else:
        body = {
            "type": "invalid_request",
            "code": "PAYLOAD_TOO_LARGE",
            "detail": PAYLOAD_TOO_LARGE_DETAIL,
            "request_id": request_id,
        }
    return json.dumps(body, separators=(",", ":")).encode()


async def send_too_large(send: Any, scope: dict[str, Any]) -> None:
    request_id = accept_or_make(header(scope, b"x-request-id"))
    body = too_large_body(scope.get("path", ""), request_id)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (HEADER.lower().encode(), request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def declared_length(scope: dict[str, Any]) -> int | None:
    value = header(scope, b"content-length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


class BodyLimitMiddleware:
    """ASGI middleware for HTTP: see the module docstring."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        limit = body_limit(path)
        if limit is None:
            return await self.app(scope, receive, send)
        length = declared_length(scope)
        if length is not None and length > limit:
            await send_too_large(send, scope)
            return None

        state = {"received": 0, "cut": False, "started": False}

        async def limited_receive() -> dict[str, Any]:
            if state["cut"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    # Do not hand the application this chunk: it hears the client left.
                    state["cut"] = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, limited_receive, tracked_send)
        if state["cut"] and not state["started"]:
            await send_too_large(send, scope)
        return None
