"""The REST API through the real ASGI application (httpx), success and failure paths.

The same application object uvicorn serves: Django's ASGI handler inside the
Channels router inside the lifespan wrapper.
"""

from __future__ import annotations

import json

import pytest
from knox.models import get_token_model
from langchain_core.messages import HumanMessage

from conversations import services
from conversations.models import Conversation
from tests.support.rest import assert_error, bearer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def history(conversation):
    return [
        services.append_message(conversation=conversation, message=HumanMessage(content=f"m{i}"))
        for i in range(3)
    ]


async def test_account_journey(asgi, settings, plain_agent):
    settings.CONFAB_REGISTRATION_OPEN = True
    register = await asgi.post(
        "/api/v1/auth/register/",
        json={"username": "bob", "password": "a-long-passphrase-9", "device_name": "phone"},
    )
    assert register.status_code == 201
    phone = register.json()["token"]

    login = await asgi.post(
        "/api/v1/auth/token/",
        json={"username": "bob", "password": "a-long-passphrase-9", "device_name": "tablet"},
    )
    assert login.status_code == 200
    tablet = login.json()["token"]
    assert login.json()["user"] == register.json()["user"]

    me = await asgi.get("/api/v1/auth/me/", headers=bearer(phone))
    assert me.status_code == 200 and me.json()["username"] == "bob"

    assert (await asgi.post("/api/v1/auth/logout/", headers=bearer(phone))).status_code == 204
    assert_error(
        await asgi.get("/api/v1/auth/me/", headers=bearer(phone)), 401, "NOT_AUTHENTICATED"
    )
    assert (await asgi.get("/api/v1/auth/me/", headers=bearer(tablet))).status_code == 200

    assert (await asgi.post("/api/v1/auth/logout-all/", headers=bearer(tablet))).status_code == 204
    assert_error(
        await asgi.get("/api/v1/auth/me/", headers=bearer(tablet)), 401, "NOT_AUTHENTICATED"
    )
    assert not await get_token_model().objects.aexists()


async def test_auth_failures(asgi, user, settings):
    bad_login = await asgi.post("/api/v1/auth/token/", json={"username": "alice", "password": "no"})
    assert_error(bad_login, 400, "INVALID_CREDENTIALS")
    missing = await asgi.post("/api/v1/auth/token/", json={"username": "alice"})
    assert "password" in assert_error(missing, 400, "VALIDATION_ERROR")["fields"]
    settings.CONFAB_REGISTRATION_OPEN = False
    closed = await asgi.post("/api/v1/auth/register/", json={"username": "x", "password": "y"})
    assert_error(closed, 403, "REGISTRATION_CLOSED")
    anonymous = await asgi.get("/api/v1/auth/me/")
    assert_error(anonymous, 401, "NOT_AUTHENTICATED")
    assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="api"'


async def test_agents(asgi, token, tutor):
    agents = await asgi.get("/api/v1/agents/", headers=bearer(token))
    assert "language-tutor" in [a["slug"] for a in agents.json()["results"]]
    detail = await asgi.get("/api/v1/agents/language-tutor/", headers=bearer(token))
    assert detail.status_code == 200 and len(detail.json()["context_variables"]) == 3
    assert_error(await asgi.get("/api/v1/agents/nope/", headers=bearer(token)), 404, "NOT_FOUND")


async def test_conversation_lifecycle(asgi, token, tutor):
    headers = bearer(token)
    created = await asgi.post(
        "/api/v1/conversations/",
        json={"agent": "language-tutor", "title": "Lesson", "context": {"레벨": "중급"}},
        headers=headers,
    )
    assert created.status_code == 201
    conversation = created.json()
    url = f"/api/v1/conversations/{conversation['id']}/"

    listed = await asgi.get("/api/v1/conversations/", params={"limit": 1}, headers=headers)
    assert listed.json()["results"] == [conversation]

    assert (await asgi.get(url, headers=headers)).json() == conversation

    patched = await asgi.patch(url, json={"title": "Renamed", "archived": True}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["title"] == "Renamed" and patched.json()["archived"] is True
    archived = await asgi.get(
        "/api/v1/conversations/", params={"archived": "true"}, headers=headers
    )
    assert [c["id"] for c in archived.json()["results"]] == [conversation["id"]]

    cleared = await asgi.post(f"{url}clear/", headers=headers)
    assert cleared.status_code == 200 and cleared.json()["message_count"] == 0

    deleted = await asgi.delete(url, headers=headers)
    assert deleted.status_code == 204
    assert not await Conversation.objects.aexists()
    assert_error(await asgi.get(url, headers=headers), 404, "NOT_FOUND")


async def test_history_and_messages(asgi, token, conversation, history):
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    page = (await asgi.get(url, params={"limit": 2}, headers=bearer(token))).json()
    assert [m["text"] for m in page["results"]] == ["m1", "m2"]
    assert page["has_older"] is True and page["older_cursor"] == history[1].id

    older = await asgi.get(url, params={"before": page["older_cursor"]}, headers=bearer(token))
    assert [m["text"] for m in older.json()["results"]] == ["m0"]

    one = await asgi.get(f"{url}{history[0].id}/", headers=bearer(token))
    assert one.status_code == 200 and one.json()["text"] == "m0"

    bad = await asgi.get(url, params={"before": "zz"}, headers=bearer(token))
    assert "before" in assert_error(bad, 400, "VALIDATION_ERROR")["fields"]
    assert_error(await asgi.get(f"{url}999999/", headers=bearer(token)), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("post", "/api/v1/conversations/", {"content": b"{oops"}, 400, "MALFORMED_JSON"),
        ("post", "/api/v1/conversations/", {"json": {"agent": 1}}, 400, "VALIDATION_ERROR"),
        (
            "post",
            "/api/v1/conversations/",
            {"content": b"agent=plain", "headers": {"Content-Type": "text/plain"}},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ("put", "/api/v1/conversations/", {"json": {}}, 405, "METHOD_NOT_ALLOWED"),
        (
            "get",
            "/api/v1/conversations/",
            {"headers": {"Accept": "image/png"}},
            406,
            "NOT_ACCEPTABLE",
        ),
        ("get", "/api/v1/conversations/999999/", {}, 404, "NOT_FOUND"),
        ("get", "/api/v1/does-not-exist/", {}, 404, "NOT_FOUND"),
        ("get", "/api/v1/conversations/", {"params": {"cursor": "%%%"}}, 400, "VALIDATION_ERROR"),
    ],
)
async def test_failures_over_asgi(asgi, token, plain_agent, method, path, kwargs, status, code):
    headers = {**bearer(token), **kwargs.pop("headers", {})}
    if "content" in kwargs and "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    response = await asgi.request(method.upper(), path, headers=headers, **kwargs)
    assert response.headers["Content-Type"] == "application/json"
    assert_error(response, status, code)


async def test_huge_body_over_asgi(asgi, token, conversation, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"content": "x" * 20_000}).encode()
    response = await asgi.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        content=body,
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert not await conversation.messages.aexists()


async def test_cors_over_asgi(asgi, token, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]
    allowed = await asgi.get(
        "/api/v1/agents/", headers={**bearer(token), "Origin": "https://app.example.com"}
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    refused = await asgi.get(
        "/api/v1/agents/", headers={**bearer(token), "Origin": "https://other.example.com"}
    )
    assert "Access-Control-Allow-Origin" not in refused.headers
