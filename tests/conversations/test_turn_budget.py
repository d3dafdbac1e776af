"""The per-user turn budget (`conversations.turn_budget`): one budget, three surfaces.

REST's TurnsThrottle, GraphQL's turn mutations and the chat websocket's
`message` / `regenerate` frames all spend from it: a turn started on one
surface counts on the others, and each refuses in its own error shape.
"""

from __future__ import annotations

import copy
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from django.contrib.auth.models import AnonymousUser

from backend.asgi import application
from conversations import turn_budget
from core.errors import RateLimited
from tests.support.graphql import GraphQLHTTP, error_codes, wait_until_idle
from tests.support.sockets import Socket, ws_path
from tests.support.turns import turn_cleanup  # noqa: F401


@pytest.fixture(autouse=True)
def fresh_budget(settings):
    """Budgets live in the cache: give each test its own key prefix."""
    caches = copy.deepcopy(settings.CACHES)
    prefix = caches["default"].get("KEY_PREFIX", "")
    caches["default"]["KEY_PREFIX"] = f"{prefix}-budget-{uuid.uuid4().hex}"
    settings.CACHES = caches


def with_turns(settings, rate: str | None) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "turns": rate,
        },
    }


def a_user(pk: int = 1) -> SimpleNamespace:
    return SimpleNamespace(pk=pk, is_authenticated=True)


# --- the budget -------------------------------------------------------------------------


def test_the_rate_setting_and_the_cache_key(settings):
    with_turns(settings, "7/hour")
    assert turn_budget.rate() == "7/hour"
    assert turn_budget.parse_rate("7/hour") == (7, 3600)
    assert turn_budget.parse_rate("30/min") == (30, 60)
    assert turn_budget.cache_key(42) == "rate_turns_user-42"


def test_turns_are_counted_per_user_and_refused_past_the_rate(settings):
    with_turns(settings, "2/min")
    alice, bob = a_user(1), a_user(2)
    assert turn_budget.spend(alice).allowed
    assert turn_budget.spend(alice).allowed
    refused = turn_budget.spend(alice)
    assert not refused.allowed and 0 < refused.wait <= 60
    assert turn_budget.spend(bob).allowed  # a budget of his own
    with pytest.raises(RateLimited) as raised:
        turn_budget.check(alice)
    assert raised.value.code == "RATE_LIMITED"
    assert 1 <= raised.value.extra["retry_after"] <= 60


def test_no_rate_or_no_user_is_not_limited(settings):
    with_turns(settings, "1/min")
    for _ in range(3):
        assert turn_budget.spend(AnonymousUser()).allowed
        assert turn_budget.spend(None).allowed
    with_turns(settings, None)
    for _ in range(3):
        assert turn_budget.spend(a_user()).allowed


def test_a_lowered_rate_applies_at_once(settings):
    with_turns(settings, "3/min")
    for _ in range(2):
        turn_budget.check(a_user())
    with_turns(settings, "1/min")
    refused = turn_budget.spend(a_user())
    assert not refused.allowed and 0 < refused.wait <= 60
    with pytest.raises(RateLimited) as raised:
        turn_budget.check(a_user())
    assert 1 <= raised.value.extra["retry_after"] <= 60


def test_simultaneous_starts_are_each_counted(settings):
    with_turns(settings, "5/min")
    with ThreadPoolExecutor(max_workers=16) as pool:
        decisions = list(pool.map(lambda _: turn_budget.spend(a_user()), range(30)))
    assert sum(decision.allowed for decision in decisions) == 5


def test_an_unreachable_cache_lets_turns_through(settings, caplog):
    with_turns(settings, "1/min")
    # The production cache, pointed where nothing listens: no Redis server is needed
    # to show what happens while it is unreachable.
    caches = copy.deepcopy(settings.CACHES)
    caches["default"] = {
        "BACKEND": "core.cache.SharedPoolRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
    settings.CACHES = caches
    with caplog.at_level(logging.WARNING, logger="conversations.turn_budget"):
        for _ in range(3):
            turn_budget.check(a_user())
    assert "Rate limit turns not applied: the cache is unreachable" in caplog.text


def test_the_rest_throttle_delegates_to_the_budget(settings):
    from api.rest.throttles import TurnsThrottle

    with_turns(settings, "1/min")
    request = SimpleNamespace(user=a_user())
    first, second = TurnsThrottle(), TurnsThrottle()
    assert first.allow_request(request, None)
    assert not second.allow_request(request, None)
    assert 0 < second.wait() <= 60
    assert not turn_budget.spend(request.user).allowed  # the same budget


# --- one budget on every surface ----------------------------------------------------------

SEND = """
mutation($id: ID!, $content: String!) {
  sendMessage(conversationId: $id, content: $content) { aiMessage { id } errors { code } }
}
"""


@pytest.mark.django_db(transaction=True)
async def test_rest_graphql_and_the_websocket_share_one_budget(settings, llm, conversation, token):
    with_turns(settings, "3/min")
    transport = httpx.ASGITransport(app=application)
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    gql = GraphQLHTTP(client)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"

    # One turn per surface uses up the budget of three...
    llm.reply_text(["chat"])
    await ws.send({"type": "message", "content": "one"})
    await ws.until("message.completed")
    await wait_until_idle(conversation.pk)
    llm.reply_text(["rest"])
    assert (await client.post(url, json={"content": "two"}, headers=auth)).status_code == 201
    await wait_until_idle(conversation.pk)
    llm.reply_text(["graphql"])
    data = await gql.data(SEND, {"id": conversation.pk, "content": "three"}, token=token)
    assert data["sendMessage"]["errors"] == []
    await wait_until_idle(conversation.pk)

    # ...and the fourth is refused on each, in its own shape, with when to retry.
    response = await client.post(url, json={"content": "four"}, headers=auth)
    assert response.status_code == 429
    assert response.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    body = await gql.execute(SEND, {"id": conversation.pk, "content": "four"}, token=token)
    assert error_codes(body) == ["RATE_LIMITED"]
    assert 1 <= body["errors"][0]["extensions"]["retryAfter"] <= 60
    await ws.send({"type": "message", "content": "four"})
    error = await ws.until("error")
    assert error["code"] == "RATE_LIMITED" and 1 <= error["retry_after"] <= 60
    await ws.send({"type": "regenerate"})
    assert (await ws.until("error"))["code"] == "RATE_LIMITED"
    assert len(llm.requests) == 3
    await ws.close()
    await client.aclose()
