"""NUL characters and lone surrogates on every HTTP text input (issue 14, finding 9).

PostgreSQL cannot store U+0000 (a 500 on `?q=`, `?agent=`, a context value) and a lone
surrogate cannot be encoded by any driver (a 500 on both databases, sign-in included).
Each case goes through the whole ASGI application; every answer must be a 400 in the
surface's error shape naming the field, nothing stored. Run on SQLite and PostgreSQL.
The chat websocket is covered by its own tests (conversations/consumers.py).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from backend.asgi import application
from conversations.models import Conversation, ConversationMessage
from tests.support.graphql import GraphQLSocket
from tests.support.rest import with_rates

pytestmark = pytest.mark.django_db(transaction=True)

NUL = "\x00"
SURROGATE = "\ud800"
BAD = [NUL, SURROGATE, f"ok{NUL}", f"{SURROGATE}\udc00x\udfff", f"a{SURROGATE}b"]
BAD_IDS = ["nul", "surrogate", "trailing-nul", "reversed-pair", "inner-surrogate"]


def body_bytes(value: Any) -> bytes:
    # ensure_ascii escapes lone surrogates as \ud800: valid JSON that decodes to one.
    return json.dumps(value, ensure_ascii=True).encode()


@pytest.fixture
async def http():
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_rest_refusal(response: httpx.Response, field: str | None = None) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR" and body["type"] == "invalid_request", body
    (name, items), *_ = body["fields"].items()
    assert items[0]["code"] == "invalid_characters", body
    if field is not None:
        assert name == field, body


def assert_graphql_refusal(body: dict[str, Any]) -> None:
    errors = body.get("errors") or []
    assert errors, body
    codes = {error["extensions"]["code"] for error in errors}
    assert codes <= {"VALIDATION_ERROR", "GRAPHQL_PARSE_FAILED"}, body
    assert "INTERNAL_SERVER_ERROR" not in json.dumps(body)


async def counts() -> tuple[int, int, int]:
    def read() -> tuple[int, int, int]:
        return (
            Conversation.objects.count(),
            ConversationMessage.objects.count(),
            get_user_model().objects.count(),
        )

    return await sync_to_async(read)()


# --- REST ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [NUL, f"ok{NUL}", f"a{NUL}b"], ids=["nul", "trailing", "inner"])
async def test_rest_query_parameters(http, token, conversation, value):
    headers = {"Authorization": f"Bearer {token}"}
    messages = f"/api/v1/conversations/{conversation.pk}/messages/"
    for path, param in [
        ("/api/v1/conversations/", "q"),
        ("/api/v1/conversations/", "agent"),
        ("/api/v1/conversations/", "cursor"),
        ("/api/v1/conversations/", "archived"),
        (messages, "before"),
        (messages, "after"),
        ("/api/v1/sync/", "since"),
        ("/api/v1/agents/", "anything"),
    ]:
        response = await http.get(path, params={param: value}, headers=headers)
        assert_rest_refusal(response, param)
    # Raw percent-escapes: NUL refused. A lone surrogate cannot be sent in a URL: its
    # UTF-8 bytes are invalid and Django decodes them as U+FFFD (never a 500).
    for raw in ("q=%00", "agent=a%00b", "q=%ED%A0%80", "q=%C0%80"):
        response = await http.get(f"/api/v1/conversations/?{raw}", headers=headers)
        if "%00" in raw:
            assert_rest_refusal(response)
        else:
            assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", BAD, ids=BAD_IDS)
async def test_rest_json_bodies(http, token, conversation, plain_agent, value):
    before = await counts()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conv = f"/api/v1/conversations/{conversation.pk}/"
    cases = [
        ("POST", "/api/v1/conversations/", {"agent": "plain", "title": value}, "title"),
        ("POST", "/api/v1/conversations/", {"agent": value}, "agent"),
        (
            "POST",
            "/api/v1/conversations/",
            {"agent": "plain", "context": {"k": value}},
            "context.k",
        ),
        ("POST", "/api/v1/conversations/", {"agent": "plain", "context": {value: "v"}}, "context"),
        ("PATCH", conv, {"title": value}, "title"),
        ("PATCH", conv, {"context": {"lang": ["x", value]}}, "context.lang.1"),
        ("POST", f"{conv}messages/", {"content": value}, "content"),
        ("POST", f"{conv}messages/", {"content": "hi", "client_message_id": value}, None),
        ("PUT", "/api/v1/auth/tokens/current/push/", {"platform": "fcm", "token": value}, None),
        ("POST", "/api/v1/auth/password/", {"current_password": value, "new_password": "x"}, None),
    ]
    for method, path, payload, field in cases:
        response = await http.request(method, path, content=body_bytes(payload), headers=headers)
        assert_rest_refusal(response, field)
    assert await counts() == before


@pytest.mark.parametrize("value", BAD, ids=BAD_IDS)
async def test_sign_in_and_registration_unauthenticated(http, user, settings, value):
    settings.CONFAB_REGISTRATION_OPEN = True
    with_rates(settings, login="1000/min", register="1000/hour")
    before = await counts()
    headers = {"Content-Type": "application/json"}
    for path, payload, field in [
        ("/api/v1/auth/token/", {"username": value, "password": "x"}, "username"),
        ("/api/v1/auth/token/", {"username": "alice", "password": value}, "password"),
        ("/api/v1/auth/token/", {"username": "alice", "password": "p", "device_name": value}, None),
        ("/api/v1/auth/register/", {"username": value, "password": "long-pass-9"}, "username"),
        ("/api/v1/auth/register/", {"username": "bob", "password": value}, "password"),
        ("/api/v1/auth/register/", {"username": "bob", "password": "p", "email": value}, None),
    ]:
        response = await http.post(path, content=body_bytes(payload), headers=headers)
        assert_rest_refusal(response, field)
    assert await counts() == before


@pytest.mark.parametrize("value", [NUL, f"root{NUL}"], ids=["nul", "trailing-nul"])
def test_form_fields(value):
    """Forms (the admin's login): NUL in a field is refused before the view. (A lone
    surrogate cannot be sent in a form: its bytes are not UTF-8.)"""
    response = Client().post("/admin/login/", {"username": value, "password": "x"})
    assert response.status_code == 400
    assert response.json()["fields"]["username"][0]["code"] == "invalid_characters"
    response = Client().post("/admin/login/", {"username": "root", "password": value})
    assert response.json()["fields"]["password"][0]["code"] == "invalid_characters"


# --- GraphQL ---------------------------------------------------------------------------

CREATE = """mutation($agent: String!, $c: JSON, $t: String) {
  createConversation(agent: $agent, context: $c, title: $t) { errors { field code } }
}"""
LIST = "query($s: String, $a: String) { conversations(search: $s, agent: $a) { nodes { id } } }"


async def graphql(http, token, query: str, variables: dict | None = None) -> httpx.Response:
    body = {"query": query, "variables": variables or {}}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return await http.post("/graphql/", content=body_bytes(body), headers=headers)


@pytest.mark.parametrize("value", BAD, ids=BAD_IDS)
async def test_graphql_variables(http, token, conversation, plain_agent, value):
    before = await counts()
    for query, variables, field in [
        (CREATE, {"agent": "plain", "c": {"k": value}}, "c.k"),
        (CREATE, {"agent": "plain", "c": {value: "v"}}, "c"),
        (CREATE, {"agent": "plain", "t": value}, "t"),
        (CREATE, {"agent": value}, "agent"),
        (LIST, {"s": value}, "s"),
        (LIST, {"a": value}, "a"),
    ]:
        response = await graphql(http, token, query, variables)
        assert response.status_code < 500, response.text
        body = response.json()
        assert_graphql_refusal(body)
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "VALIDATION_ERROR"
        assert error["extensions"]["fields"][0] == {
            "field": field,
            "code": "invalid_characters",
            "message": "Text may not contain NUL characters or unpaired surrogates.",
        }
    assert await counts() == before


PAYLOAD = "{ errors { code } }"


@pytest.mark.parametrize(
    "literal",
    [r"\u0000", r"ok\u0000", r"\ud800", r"a\uDBFFb", r"\u{0}", r"\u{D800}"],
)
async def test_graphql_inline_strings(http, token, conversation, plain_agent, literal):
    before = await counts()
    for query in [
        f'{{ conversations(search: "{literal}") {{ nodes {{ id }} }} }}',
        f'{{ conversations(agent: "{literal}") {{ nodes {{ id }} }} }}',
        f'mutation {{ createConversation(agent: "plain", title: "{literal}") {PAYLOAD} }}',
        f'mutation {{ createConversation(agent: "plain", context: {{k: "{literal}"}}) {PAYLOAD} }}',
        f"mutation {{ sendMessage(conversationId: {conversation.pk}, "
        f'content: "x{literal}") {PAYLOAD} }}',
    ]:
        response = await graphql(http, token, query)
        assert response.status_code < 500, response.text
        assert_graphql_refusal(response.json())
    assert await counts() == before


async def test_graphql_query_parameters_get_the_graphql_shape(http, token):
    response = await http.get(
        "/graphql/",
        params={"query": "{ agents { slug } }", "x": NUL},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "VALIDATION_ERROR"


async def test_graphql_websocket_variables(token, plain_agent):
    socket = GraphQLSocket()
    await socket.connect(token)
    try:
        for n, value in enumerate((NUL, SURROGATE)):
            await socket.subscribe(f"op{n}", CREATE, {"agent": "plain", "c": {"k": value}})
            message = await socket.receive()
            assert message["id"] == f"op{n}" and message["type"] == "error", message
            (error,) = message["payload"]
            assert error["extensions"]["code"] == "VALIDATION_ERROR", message
            assert error["extensions"]["fields"][0]["code"] == "invalid_characters"
        # The socket still works.
        await socket.subscribe("ok", CREATE, {"agent": "plain", "c": {}})
        data = await socket.next_data("ok")
        assert data["createConversation"]["errors"] == []
    finally:
        await socket.close()
    assert await counts() == (1, 0, 1)
