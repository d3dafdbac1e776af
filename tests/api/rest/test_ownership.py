"""Another user's conversation is exactly "not found" on every route and method.

The routes are enumerated from the URL resolver, so a route added later is
walked too (and a route with a path parameter this test does not know fails
it until the test is taught about it).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from knox.models import get_token_model
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.approvals.models import ToolApproval
from conversations.files.models import UserFile
from conversations.files.services import create_file
from conversations.models import Conversation, ConversationMessage
from conversations.shares.models import Share
from conversations.shares.services import create_share
from tests.support.rest import assert_error, comparable
from tests.support.routes import CALL_ID, api_routes, fill, methods_of, owned_routes
from tests.support.tokens import make_token

pytestmark = pytest.mark.django_db


# Routes whose parameters name shared objects, not the caller's.
def snapshot() -> list[Any]:
    return [
        list(Conversation.objects.order_by("pk").values()),
        list(ConversationMessage.objects.order_by("pk").values()),
        get_token_model().objects.count(),
        list(UserFile.objects.order_by("pk").values()),
        list(ToolApproval.objects.order_by("pk").values()),
        list(Share.objects.order_by("pk").values()),
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
    # A call of the victim's waiting for approval: nobody else can see or decide it.
    ToolApproval.objects.create(
        conversation=conversation,
        user=user,
        message=message,
        turn_id=uuid.uuid4(),
        call_id=CALL_ID,
        tool_name="calculator",
        arguments={"expression": "1+1"},
        deadline=timezone.now() + timedelta(hours=1),
    )
    share = create_share(user=user, conversation=conversation)
    before = snapshot()
    bodies = [{"content": "hi", "title": "stolen", "archived": True}, {"zzz": 1}, None]
    checked = 0

    for route, pattern in owned_routes():
        for method in methods_of(pattern):
            for body in bodies if method in ("post", "put", "patch") else [None]:
                theirs = fill(
                    route, conversation.pk, message.pk, device, file.pk, share_id=share.pk
                )
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
                # Indistinguishable (but for the request id every response has).
                assert comparable(response) == comparable(absent), label
                checked += 1

    assert checked >= 15
    assert snapshot() == before


def test_options_does_not_reveal_existence(other_api, conversation):
    for route, _ in owned_routes():
        theirs = other_api.options(fill(route, conversation.pk, 1))
        missing = other_api.options(fill(route, 2**40, 1))
        assert theirs.status_code == missing.status_code
        assert comparable(theirs) == comparable(missing)


def test_every_route_needs_a_token_except_sign_in(anon, conversation):
    public = {
        "api/v1/auth/token/",
        "api/v1/auth/register/",
        "api/v1/files/signed/<str:token>/",
        "api/v1/shared/<str:token>/",
        "api/v1/shared/files/<str:token>/",
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
