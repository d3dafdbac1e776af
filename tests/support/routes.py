"""The API's routes as the URL resolver knows them: for walks that must cover every route
(ownership, authentication, the access sweep)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from api.rest.urls import unknown_endpoint

# (A signed file URL names no one's object: its signature is the permission;
# tests/api/rest/test_files.py forges and alters them. A share's token is its
# permission the same way: tests/api/rest/test_shares.py.)
SHARED = {
    "api/v1/agents/<slug:slug>/",
    "api/v1/files/signed/<str:token>/",
    "api/v1/shared/<str:token>/",
    "api/v1/shared/files/<str:token>/",
}
METHODS = ("get", "head", "post", "put", "patch", "delete")


def api_routes() -> list[tuple[str, URLPattern]]:
    """Every route under api/v1/ as (route string, pattern)."""

    def walk(patterns: list, prefix: str) -> Any:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    return [
        (route, pattern)
        for route, pattern in walk(get_resolver().url_patterns, "")
        if route.startswith("api/v1/") and pattern.callback is not unknown_endpoint
    ]


def owned_routes() -> list[tuple[str, URLPattern]]:
    routes = []
    for route, pattern in api_routes():
        params = set(pattern.pattern.converters)
        if not params or route in SHARED:
            continue
        known = {
            "conversation_id",
            "message_id",
            "device_id",
            "file_id",
            "project_id",
            "call_id",
            "share_id",
        }
        assert params <= known, (
            f"{route}: teach this test how to fill {params} with another user's objects"
        )
        routes.append((route, pattern))
    return routes


def methods_of(pattern: URLPattern) -> list[str]:
    view = pattern.callback.cls
    return [m for m in METHODS if hasattr(view, m) or (m == "head" and hasattr(view, "get"))]


MISSING_DEVICE = "00000000-0000-4000-8000-000000000000"
# The tool call id the walks use: tests that create a pending call in the victim's
# conversation give it this id (tests/api/rest/test_ownership.py).
CALL_ID = "call_walk"


def fill(
    route: str,
    conversation_id: int,
    message_id: int,
    device_id: str = MISSING_DEVICE,
    file_id: int | None = None,
    project_id: int | None = None,
    share_id: int | None = None,
) -> str:
    """The route with its parameters filled (a project id defaults to the conversation's,
    a share id to the message's: tests without them get an id that is not one)."""
    project = conversation_id if project_id is None else project_id
    return "/" + (
        route.replace("<int:conversation_id>", str(conversation_id))
        .replace("<int:project_id>", str(project))
        .replace("<int:message_id>", str(message_id))
        .replace("<uuid:device_id>", device_id)
        .replace("<int:file_id>", str(message_id if file_id is None else file_id))
        .replace("<int:share_id>", str(message_id if share_id is None else share_id))
        .replace("<str:token>", "not-a-token")
        .replace("<str:call_id>", CALL_ID)
    )
