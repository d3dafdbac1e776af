"""Credentials on every surface: bad tokens, sessions without CSRF, the admin.

- Missing, malformed, foreign-scheme, oversized, unknown, expired, revoked and
  deactivated-user tokens are refused on every REST route and method (walked
  from the URL resolver), GraphQL over HTTP (401 `NOT_AUTHENTICATED`), the chat
  websocket (header and `?token=`: close 4401) and graphql-transport-ws
  (`connection_init` payload and handshake header: close 4403), on a live
  server, with nothing changed and no turn run.
- A logged-in session (the browsable API, the admin) cannot write through the
  REST API without the CSRF token, on any write route.
- The admin is for staff sessions only: a bearer token, even a staff member's,
  does not open it.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from knox.models import get_token_model
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Conversation, ConversationMessage
from tests.support.live_clients import recv_json
from tests.support.routes import api_routes, fill, methods_of

# Sign-in and sign-up take credentials; a signed file URL's signature is its permission
# (tests/api/rest/test_files.py forges, alters and expires them), and a share's token
# is (tests/api/rest/test_shares.py).
PUBLIC_ROUTES = {
    "api/v1/auth/token/",
    "api/v1/auth/register/",
    "api/v1/files/signed/<str:token>/",
    "api/v1/shared/<str:token>/",
    "api/v1/shared/files/<str:token>/",
}


def make_token(user: Any, *, expired: bool = False, revoked: bool = False) -> str:
    instance, token = get_token_model().objects.create(user=user, name="sweep")
    if expired:
        get_token_model().objects.filter(pk=instance.pk).update(
            expiry=timezone.now() - timedelta(seconds=1)
        )
    if revoked:
        instance.delete()
    return token


@sync_to_async
def bad_credentials(user: Any) -> dict[str, str | None]:
    """Authorization header values (None: no header at all) that must be refused."""
    inactive = get_user_model().objects.create_user(username="ivan", password="ivan-password-1")
    inactive_token = make_token(inactive)
    inactive.is_active = False
    inactive.save()
    basic = base64.b64encode(b"alice:alice-password-1").decode()
    return {
        "missing": None,
        "scheme only": "Bearer",
        "two credentials": "Bearer abc def",
        "basic auth": f"Basic {basic}",
        "oversized": "Bearer " + "a" * 5_000,
        "not ascii": "Bearer t\u00f6k\u00e9n" + "0" * 58,
        "unknown": f"Bearer {secrets.token_hex(32)}",
        "expired": f"Bearer {make_token(user, expired=True)}",
        "revoked": f"Bearer {make_token(user, revoked=True)}",
        "inactive user": f"Bearer {inactive_token}",
    }


@sync_to_async
def history(user: Any, agent: Any) -> tuple[Conversation, ConversationMessage]:
    conversation = services.create_conversation(user=user, agent=agent, title="Mine")
    services.append_message(conversation=conversation, message=HumanMessage("hello"))
    message = services.append_message(conversation=conversation, message=AIMessage("hi"))
    return conversation, message


@sync_to_async
def rows() -> list[Any]:
    return [
        list(Conversation.objects.order_by("pk").values()),
        list(ConversationMessage.objects.order_by("pk").values()),
    ]


async def closed_with(url: str, *, headers: dict | None = None, init: Any = None) -> int:
    """The close code of a websocket opened with these credentials."""
    kwargs: dict[str, Any] = {"additional_headers": headers or {}}
    if init is not None:
        kwargs["subprotocols"] = ["graphql-transport-ws"]
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(url, **kwargs) as socket:
            if init is not None:
                await socket.send(json.dumps({"type": "connection_init", "payload": init}))
            await recv_json(socket, 10)
    return closed.value.rcvd.code


@pytest.mark.django_db(transaction=True)
async def test_bad_credentials_are_refused_on_every_surface(
    live_server_factory, llm, user, plain_agent
):
    server = live_server_factory()
    conversation, message = await history(user, plain_agent)
    credentials = await bad_credentials(user)
    before = await rows()
    checked = 0
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for kind, value in credentials.items():
            headers = {"Authorization": value} if value is not None else {}
            raw_headers = {k: v.encode("latin-1") for k, v in headers.items()}
            for route, pattern in api_routes():
                if route in PUBLIC_ROUTES:
                    continue
                path = fill(route, conversation.pk, message.pk).replace("<slug:slug>", "plain")
                for method in methods_of(pattern):
                    body = {"content": "hi", "title": "x"} if method in ("post", "patch") else None
                    response = await client.request(method, path, json=body, headers=raw_headers)
                    label = f"{kind}: {method.upper()} {path}"
                    assert response.status_code == 401, (label, response.text)
                    assert response.headers["WWW-Authenticate"].startswith("Bearer"), label
                    if method != "head":
                        assert response.json()["code"] == "NOT_AUTHENTICATED", label
                    checked += 1
            response = await client.post(
                "/graphql/", json={"query": "{ me { id } }"}, headers=raw_headers
            )
            assert response.status_code == 401, (kind, response.text)
            assert response.json()["errors"][0]["extensions"]["code"] == "NOT_AUTHENTICATED"

            chat = f"{server.ws_url}/ws/conversations/{conversation.pk}/"
            graphql = f"{server.ws_url}/graphql/"
            assert await closed_with(chat, headers=headers) == 4401, kind
            assert await closed_with(graphql, init={"authorization": value}) == 4403, kind
            assert await closed_with(graphql, headers=headers, init={}) == 4403, kind
            if value is not None and " " in value:
                query_token = value.split(" ", 1)[1].split(" ")[0]
                if query_token.isascii():
                    assert await closed_with(f"{chat}?token={query_token}") == 4401, kind
                    code = await closed_with(f"{graphql}?token={query_token}", init={})
                    assert code == 4403, kind
            checked += 4

    assert checked >= 10 * 20
    assert await rows() == before
    assert llm.requests == []


WRITE_METHODS = ("post", "put", "patch", "delete")


@pytest.mark.django_db
def test_session_writes_need_the_csrf_token(user, conversation):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    before = [
        list(Conversation.objects.values()),
        list(ConversationMessage.objects.values()),
        get_token_model().objects.count(),
    ]
    # The session does authenticate (reads work)...
    assert browser.get("/api/v1/auth/me/").json()["username"] == "alice"
    checked = 0
    for route, _ in api_routes():
        if route in PUBLIC_ROUTES:
            continue  # no session auth there: sign-in and sign-up take credentials
        path = fill(route, conversation.pk, 1).replace("<slug:slug>", "plain")
        for method in WRITE_METHODS:
            response = getattr(browser, method)(
                path, data=json.dumps({"title": "csrf"}), content_type="application/json"
            )
            # ...but no write gets past the CSRF check, whatever the route serves.
            assert response.status_code == 403, (method, path, response.content)
            assert response.json()["code"] == "PERMISSION_DENIED"
            assert "CSRF" in response.json()["detail"]
            checked += 1
    assert checked >= 30
    assert [
        list(Conversation.objects.values()),
        list(ConversationMessage.objects.values()),
        get_token_model().objects.count(),
    ] == before
    # With the token (as the browsable API's forms send it) the same session writes.
    secret = "c" * 32
    browser.cookies["csrftoken"] = secret
    response = browser.patch(
        f"/api/v1/conversations/{conversation.pk}/",
        data=json.dumps({"title": "with token"}),
        content_type="application/json",
        headers={"X-CSRFToken": secret},
    )
    assert response.status_code == 200, response.content
    assert Conversation.objects.get(pk=conversation.pk).title == "with token"


@pytest.mark.django_db
def test_admin_is_for_staff_sessions_only(client, user, conversation):
    staff = get_user_model().objects.create_user("staff", password="staff-password-1")
    staff.is_staff = staff.is_superuser = True
    staff.save()
    pages = ["/admin/", "/admin/conversations/conversationmessage/", "/admin/auth/user/"]
    for page in pages:
        # Anonymous, a bearer token (even a staff member's), a non-staff session: login page.
        for credentials in ({}, {"HTTP_AUTHORIZATION": f"Bearer {make_token(staff)}"}):
            response = Client().get(page, **credentials)
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
        client.force_login(user)
        response = client.get(page)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], page
    # A non-staff user cannot sign in to the admin with the right password either.
    response = Client().post("/admin/login/", {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 200 and "_auth_user_id" not in Client().session
    staff_browser = Client()
    staff_browser.force_login(staff)
    for page in pages:
        assert staff_browser.get(page).status_code == 200, page
