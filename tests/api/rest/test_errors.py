"""The one error shape, body limits, content negotiation, throttling, CORS, docs."""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from rest_framework import exceptions as drf

from api.rest.errors import exception_handler, flatten_field_errors
from conversations.models import ConversationMessage
from tests.support.rest import assert_error, with_rates

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/conversations/"


def messages_url(conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/"


# --- request bodies ----------------------------------------------------------


@pytest.mark.parametrize("body", ['{"agent": "plain",', "{'agent': 'plain'}", "NaN", "\xff\xfe"])
def test_malformed_json(api, plain_agent, body):
    response = api.post(LIST_URL, body.encode("latin-1"), content_type="application/json")
    body = assert_error(response, 400, "MALFORMED_JSON")
    assert body["type"] == "invalid_request"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_wrong_content_type(api, plain_agent, content_type):
    response = api.post(LIST_URL, "agent=plain", content_type=content_type)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_body_over_the_upload_limit_is_413(api, plain_agent, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    payload = json.dumps({"agent": "plain", "title": "x" * 2_000})
    response = api.post(LIST_URL, payload, content_type="application/json")
    body = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert body["type"] == "invalid_request"


def test_message_over_the_content_limit_is_a_field_error(api, conversation, settings):
    settings.CONFAB_MAX_CONTENT_CHARS = 50
    response = api.post(messages_url(conversation), {"content": "é" * 51}, format="json")
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["fields"]["content"][0]["code"] == "too_long"
    assert not ConversationMessage.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({}, "content", "required"),
        ({"content": ""}, "content", "blank"),
        ({"content": "   \n"}, "content", "blank"),
        ({"content": 42}, "content", "invalid"),
        ({"content": None}, "content", "null"),
        ({"content": {"text": "hi"}}, "content", "invalid"),
        ({"content": "hi", "client_message_id": 5}, "client_message_id", "invalid"),
        ({"content": "hi", "client_message_id": "x" * 101}, "client_message_id", "max_length"),
        ({"content": "hi", "role": "system"}, "role", "unknown_field"),
    ],
)
def test_bad_message_bodies(api, conversation, payload, field, code):
    response = api.post(messages_url(conversation), payload, format="json")
    body = assert_error(response, 400, "VALIDATION_ERROR")
    assert body["fields"][field][0]["code"] == code
    assert not ConversationMessage.objects.exists()


def test_message_body_must_be_an_object(api, conversation):
    response = api.post(messages_url(conversation), ["hi"], format="json")
    assert "non_field_errors" in assert_error(response, 400, "VALIDATION_ERROR")["fields"]


# --- protocol errors ---------------------------------------------------------


def test_method_not_allowed(api, conversation):
    response = api.put(f"{LIST_URL}{conversation.pk}/", {"title": "x"}, format="json")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "PATCH" in response.headers["Allow"]


def test_not_acceptable(api, conversation):
    assert_error(api.get(LIST_URL, HTTP_ACCEPT="application/xml"), 406, "NOT_ACCEPTABLE")
    # An event stream is offered by the turn endpoints only.
    assert_error(api.get(LIST_URL, HTTP_ACCEPT="text/event-stream"), 406, "NOT_ACCEPTABLE")


def test_json_answers_on_turn_endpoints_whatever_the_accept_header(api, conversation):
    response = api.get(messages_url(conversation), HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    response = api.post(
        messages_url(conversation), {}, format="json", HTTP_ACCEPT="text/event-stream"
    )
    assert_error(response, 400, "VALIDATION_ERROR")
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "path", ["/api/v1/nope/", "/api/v1/conversations", "/api/v1/conversations/x/", "/api/v1/"]
)
def test_unknown_endpoints_are_json_404(api, path):
    for method in ("get", "post", "delete"):
        body = assert_error(getattr(api, method)(path), 404, "NOT_FOUND")
        assert body["type"] == "not_found"


def test_unknown_endpoint_hints_at_the_trailing_slash(api):
    detail = api.get("/api/v1/conversations").json()["detail"]
    assert "slash" in detail


# --- the handler itself ------------------------------------------------------


def test_field_errors_flatten_nested_detail():
    detail = drf.ValidationError(
        {"a": ["bad"], "b": {"c": [drf.ErrorDetail("worse", code="x")]}, "d": [{}, {"e": ["no"]}]}
    ).detail
    assert flatten_field_errors(detail) == {
        "a": [{"code": "invalid", "message": "bad"}],
        "b.c": [{"code": "x", "message": "worse"}],
        "d.1.e": [{"code": "invalid", "message": "no"}],
    }


def test_unexpected_errors_are_500_without_their_text():
    response = exception_handler(RuntimeError("secret key sk-123"), {"request": None, "view": None})
    assert response.status_code == 500
    assert response.data == {
        "type": "api_error",
        "code": "INTERNAL_ERROR",
        "detail": "Something went wrong on our side. The error was logged.",
    }


def test_database_errors_are_left_to_the_503_middleware():
    assert exception_handler(OperationalError("down"), {"request": None, "view": None}) is None


# --- throttling ----------------------------------------------------------------


def test_user_rate_applies_to_every_endpoint_per_user(api, other_api, conversation, settings):
    with_rates(settings, user="3/min")
    assert api.get(LIST_URL).status_code == 200
    assert api.get("/api/v1/agents/").status_code == 200
    assert api.get(f"{LIST_URL}{conversation.pk}/").status_code == 200

    response = api.get("/api/v1/auth/me/")
    body = assert_error(response, 429, "RATE_LIMITED")
    assert body["type"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert other_api.get(LIST_URL).status_code == 200


# --- CORS ----------------------------------------------------------------------


def test_cors_allows_only_configured_origins(api, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://app.example.com"]

    allowed = api.get(LIST_URL, HTTP_ORIGIN="https://app.example.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"
    other = api.get(LIST_URL, HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in other

    preflight = api.options(
        LIST_URL,
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in preflight["Access-Control-Allow-Headers"]


# --- docs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/schema/", "application/vnd.oai.openapi"),
        ("/api/docs/", "text/html"),
        ("/api/redoc/", "text/html"),
    ],
)
def test_docs_are_public(anon, settings, path, content_type):
    settings.CONFAB_API_DOCS = True  # the pages; the schema is public whatever it says
    anon.credentials(HTTP_AUTHORIZATION="Bearer stale")
    response = anon.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
