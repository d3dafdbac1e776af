"""GraphQL spends the per-user request budget REST spends (`CONFAB_THROTTLE_USER`).

Issue 14, finding 5: REST answered 429 after 20 requests at 20/min, while GraphQL
answered 40 of 40 requests of 30 aliased `createConversation` each (1,200
conversations). Now every operation spends one request of the same budget (the
REST `user` scope's counter) and a mutation spends one per mutation field; past
the rate an operation is refused before it runs.
"""

from __future__ import annotations

import copy
import uuid

import pytest

from conversations.models import Conversation
from tests.support.graphql import GraphQLSocket, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

ME = "{ me { id } }"


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    """Rate counters live in the cache: give each test its own key prefix."""
    caches = copy.deepcopy(settings.CACHES)
    prefix = caches["default"].get("KEY_PREFIX", "")
    caches["default"]["KEY_PREFIX"] = f"{prefix}-rate-{uuid.uuid4().hex}"
    settings.CACHES = caches


def user_rate(settings, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "user": rate,
        },
    }


def creates(count: int) -> str:
    fields = " ".join(
        f'c{i}: createConversation(agent: "plain") {{ conversation {{ id }} errors {{ code }} }}'
        for i in range(count)
    )
    return "mutation { " + fields + " }"


def assert_rate_limited(response) -> None:
    assert response.status_code == 429, response.text
    assert 0 < int(response.headers["Retry-After"]) <= 60
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["type"] == "rate_limited"
    assert 0 < error["extensions"]["retryAfter"] <= 60


async def test_the_reported_attack_creates_no_more_than_the_rate(
    gql, token, user, plain_agent, settings
):
    user_rate(settings, "20/min")
    statuses = []
    for _ in range(40):
        response = await gql.post(creates(30), token=token)
        statuses.append(response.status_code)
    # The first request spends 30 of 20: refused whole, nothing created.
    assert statuses == [429] * 40
    assert await Conversation.objects.filter(user=user).acount() == 0


async def test_each_mutation_field_spends_one_request(gql, token, user, plain_agent, settings):
    user_rate(settings, "20/min")
    for _ in range(2):
        body = await gql.execute(creates(10), token=token)
        assert "errors" not in body, body
    assert await Conversation.objects.filter(user=user).acount() == 20
    response = await gql.post(creates(1), token=token)
    assert_rate_limited(response)
    assert await Conversation.objects.filter(user=user).acount() == 20
    # Queries are refused as well: the budget is spent.
    assert_rate_limited(await gql.post(ME, token=token))


async def test_graphql_and_rest_share_one_budget(gql, token, settings):
    user_rate(settings, "5/min")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert (await gql.client.get("/api/v1/auth/me/", headers=headers)).status_code == 200
    for _ in range(2):
        assert "errors" not in await gql.execute(ME, token=token)
    # 5 spent: both surfaces refuse.
    assert_rate_limited(await gql.post(ME, token=token))
    assert (await gql.client.get("/api/v1/auth/me/", headers=headers)).status_code == 429


async def test_users_have_their_own_budgets(gql, token, other_token, settings):
    user_rate(settings, "2/min")
    for _ in range(2):
        assert "errors" not in await gql.execute(ME, token=token)
    assert_rate_limited(await gql.post(ME, token=token))
    assert "errors" not in await gql.execute(ME, token=other_token)


async def test_invalid_documents_spend_too(gql, token, settings):
    """Like REST, where a 400 counts: a document that fails to parse or validate is an
    operation too."""
    user_rate(settings, "3/min")
    assert error_codes(await gql.execute("{ me {", token=token)) == ["GRAPHQL_PARSE_FAILED"]
    assert error_codes(await gql.execute("{ nope }", token=token)) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "errors" not in await gql.execute(ME, token=token)
    assert_rate_limited(await gql.post(ME, token=token))


async def test_websocket_operations_spend_the_same_budget(token, user, plain_agent, settings):
    user_rate(settings, "4/min")
    socket = GraphQLSocket()
    await socket.connect(token)
    await socket.subscribe("one", creates(3))
    assert (await socket.next_data("one"))["c0"]["errors"] == []
    assert (await socket.receive())["type"] == "complete"
    await socket.subscribe("two", creates(2))
    message = await socket.receive()
    assert message["id"] == "two" and message["type"] == "error", message
    [error] = message["payload"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] > 0
    # A subscription is an operation too.
    await socket.subscribe("three", "subscription { conversationsChanged { __typename } }")
    message = await socket.receive()
    assert message["id"] == "three" and message["type"] == "error", message
    assert [e["extensions"]["code"] for e in message["payload"]] == ["RATE_LIMITED"]
    await socket.close()
    assert await Conversation.objects.filter(user=user).acount() == 3


async def test_no_rate_means_no_limit(gql, token, settings):
    user_rate(settings, None)
    for _ in range(5):
        assert "errors" not in await gql.execute(ME, token=token)
