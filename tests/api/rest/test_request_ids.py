"""Request ids (core/request_id.py) and structured logs (core/logs.py), through the
ASGI application: every response has X-Request-ID, error bodies name it, and the log
lines of a request and of the turn it started carry it, never a token or a prompt."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from api.log_redaction import RedactTokens
from core.logs import JsonFormatter
from core.request_id import RequestIdLogFilter
from tests.support.rest import assert_error, bearer

pytestmark = pytest.mark.django_db(transaction=True)

MADE = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def log_lines():
    """The root logger's records at INFO (production's level), rendered as the
    production handler renders them (settings.LOGGING: the same filters, JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdLogFilter())
    handler.addFilter(RedactTokens())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line]

    lines.text = stream.getvalue  # type: ignore[attr-defined]
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


async def test_every_response_has_a_request_id(asgi):
    made = await asgi.get("/healthz")
    assert MADE.match(made.headers["X-Request-ID"])
    again = await asgi.get("/healthz")
    assert again.headers["X-Request-ID"] != made.headers["X-Request-ID"]

    kept = await asgi.get("/healthz", headers={"X-Request-ID": "lb-7f3a:2.b_c-d"})
    assert kept.headers["X-Request-ID"] == "lb-7f3a:2.b_c-d"
    # Not sane (spaces, quotes, too long): replaced, so no log line can be forged with it.
    for sent in ("a b", 'x"}{', "x" * 129, ""):
        replaced = await asgi.get("/healthz", headers={"X-Request-ID": sent})
        assert MADE.match(replaced.headers["X-Request-ID"]), sent


async def test_error_bodies_name_the_request(asgi, token):
    response = await asgi.get(
        "/api/v1/conversations/123456789/", headers={**bearer(token), "X-Request-ID": "req-404"}
    )
    body = assert_error(response, 404, "NOT_FOUND")
    assert body["request_id"] == "req-404"
    unauthenticated = await asgi.get("/api/v1/conversations/")
    body = assert_error(unauthenticated, 401, "NOT_AUTHENTICATED")
    assert MADE.match(body["request_id"])


async def test_a_turns_log_lines_carry_its_request_id_and_no_token_or_prompt(
    asgi, llm, token, conversation, log_lines
):
    prompt = "My secret prompt 5d41402abc4b2a76"
    llm.reply_error(500)

    response = await asgi.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        json={"content": prompt},
        headers={**bearer(token), "X-Request-ID": "req-turn-1"},
    )

    assert response.status_code == 201, response.text
    assert response.json()["ai_message"]["status"] == "failed"
    lines = log_lines()
    # The turn ran in its own task, after the request's view returned the turn's start:
    # its failure is logged with the id of the request that started it.
    failure = [line for line in lines if line["message"].startswith("Turn ")]
    assert failure and failure[0]["level"] == "WARNING", lines
    assert all(line["request_id"] == "req-turn-1" for line in failure)
    assert "provider_error" in failure[0]["message"]
    text = log_lines.text()
    assert token not in text and token[:16] not in text
    assert prompt not in text and "5d41402abc4b2a76" not in text


async def test_json_lines_have_the_standard_fields(log_lines):
    logging.getLogger("confab.test").warning("hello %s", "world", extra={"attempt": 2})
    (line,) = [line for line in log_lines() if line["logger"] == "confab.test"]
    assert line["message"] == "hello world" and line["level"] == "WARNING"
    assert line["attempt"] == 2 and line["request_id"] is None
    assert line["time"].endswith("+00:00")
