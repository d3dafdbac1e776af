"""Another user's conversation is exactly "not found" on every route and method.

The routes are enumerated from the URL resolver, so a route added later is
walked too (and a route with a path parameter this test does not know fails
it until the test is taught about it).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from knox.models import get_token_model
from langchain_core.messages import AIMessage, HumanMessage

from api.rest.urls import unknown_endpoint
from conversations import services
from conversations.files.models import UserFile
from conversations.files.services import create_file
from conversations.models import Conversation, ConversationMessage
from tests.api.rest.conftest import assert_error
from tests.conftest import make_token

pytestmark = pytest.mark.django_db

# Routes whose parameters name shared objects, not the caller's.
# (A signed file URL names no one's object: its signature is the permission;
# tests/api/rest/test_files.py forges and alters them.)
SHARED = {"api/v1/agents/<slug:slug>/", "api/v1/files/signed/<str:token>/"}
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
        assert params <= {"conversation_id", "message_id", "device_id", "file_id"}, (
            f"{route}: teach this test how to fill {params} with another user's objects"
        )
        routes.append((route, pattern))
    return routes


def methods_of(pattern: URLPattern) -> list[str]:
    view = pattern.callback.cls
    return [m for m in METHODS if hasattr(view, m) or (m == "head" and hasattr(view, "get"))]


MISSING_DEVICE = "00000000-0000-4000-8000-000000000000"


def fill(
    route: str,
    conversation_id: int,
    message_id: int,
    device_id: str = MISSING_DEVICE,
    file_id: int | None = None,
) -> str:
    return "/" + (
        route.replace("<int:conversation_id>", str(conversation_id))
        .replace("<int:message_id>", str(message_id))
        .replace("<uuid:device_id>", device_id)
        .replace("<int:file_id>", str(message_id if file_id is None else file_id))
        .replace("<str:token>", "not-a-token")
    )


def snapshot() -> list[Any]:
    return [
        list(Conversation.objects.order_by("pk").values()),
        list(ConversationMessage.objects.order_by("pk").values()),
        get_token_model().objects.count(),
        list(UserFile.objects.order_by("pk").values()),
    ]


def test_the_walk_covers_the_conversation_routes():
    routes = {route for route, _ in owned_routes()}
    assert "api/v1/conversations/<int:conversation_id>/" in routes
    assert "api/v1/conversations/<int:conversation_id>/messages/<int:message_id>/" in routes
    assert len(routes) >= 6


def test_other_users_objects_are_not_found_everywhere(user, other_api, conversation):
    services.append_message(conversation=conversation, message=HumanMessage(content="private"))
    message = services.append_message(conversation=conversation, message=AIMessage(content="x"))
    make_token(user, "victim's phone")
    device = str(get_token_model().objects.get(user=user).public_id)
    file = create_file(user=user, data=b"private notes", name="notes.txt")
    before = snapshot()
    bodies = [{"content": "hi", "title": "stolen", "archived": True}, {"zzz": 1}, None]
    checked = 0

    for route, pattern in owned_routes():
        for method in methods_of(pattern):
            for body in bodies if method in ("post", "put", "patch") else [None]:
                theirs = fill(route, conversation.pk, message.pk, device, file.pk)
                missing = fill(route, 2**40, 2**40)
                send = getattr(other_api, method)
                kwargs = {"format": "json"} if body is not None else {}
                response = send(theirs, body, **kwargs) if body is not None else send(theirs)
                label = f"{method.upper()} {theirs} {body}"
                if method == "head":
                    assert response.status_code == 404, label
                    continue
                assert_error(response, 404, "NOT_FOUND")
                absent = send(missing, body, **kwargs) if body is not None else send(missing)
                assert response.json() == absent.json(), label  # indistinguishable
                checked += 1

    assert checked >= 15
    assert snapshot() == before


def test_options_does_not_reveal_existence(other_api, conversation):
    for route, _ in owned_routes():
        theirs = other_api.options(fill(route, conversation.pk, 1))
        missing = other_api.options(fill(route, 2**40, 1))
        assert theirs.status_code == missing.status_code
        assert theirs.content == missing.content


def test_every_route_needs_a_token_except_sign_in(anon, conversation):
    public = {
        "api/v1/auth/token/",
        "api/v1/auth/register/",
        "api/v1/files/signed/<str:token>/",
    }
    for route, pattern in api_routes():
        for method in methods_of(pattern):
            path = fill(route, conversation.pk, 1).replace("<slug:slug>", "plain")
            response = getattr(anon, method)(path)
            if route in public:
                assert response.status_code != 401, path
            elif method == "head":
                assert response.status_code == 401, path
            else:
                assert_error(response, 401, "NOT_AUTHENTICATED")
