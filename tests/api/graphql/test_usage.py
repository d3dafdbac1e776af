"""GraphQL `usage` and `quota`, and `sendMessage` refused when the quota is spent
(extensions.code QUOTA_EXCEEDED with resetsAt and retryAfter; nothing stored)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from conversations.models import ConversationMessage
from conversations.usage import quota
from conversations.usage.services import record_usage
from tests.support.graphql import SEND

pytestmark = pytest.mark.django_db(transaction=True)

USAGE = """
query($from: String, $groupBy: UsageGroupBy!) {
  usage(from: $from, groupBy: $groupBy) {
    start end groupBy
    groups { key title calls inputTokens outputTokens totalTokens cost }
    totals { calls totalTokens cost }
  }
}
"""

QUOTA = """
{ quota {
    day { resetsAt spent tokens { limit used remaining } cost { limit used remaining } }
    month { startsAt spent tokens { limit } }
    inFlight { turns tokens cost }
} }
"""


def spend(user, tokens: int, conversation_id=None) -> None:
    record_usage(
        user_id=user.pk, conversation_id=conversation_id, message_id=None, model="m",
        kind="turn", input_tokens=tokens, output_tokens=5, cost=Decimal("0.25"),
    )  # fmt: skip


async def test_usage_and_quota_queries(gql, token, other_token, user, conversation, settings):
    await sync_to_async(spend)(user, 95, conversation.pk)
    data = await gql.data(USAGE, {"groupBy": "CONVERSATION"}, token=token)
    usage = data["usage"]
    assert usage["groupBy"] == "CONVERSATION"
    assert usage["groups"] == [
        {
            "key": str(conversation.pk),
            "title": "Test chat",
            "calls": 1,
            "inputTokens": 95,
            "outputTokens": 5,
            "totalTokens": 100,
            "cost": "0.2500000000",
        }
    ]
    assert usage["totals"] == {"calls": 1, "totalTokens": 100, "cost": "0.2500000000"}
    theirs = await gql.data(USAGE, {"groupBy": "DAY"}, token=other_token)
    assert theirs["usage"]["groups"] == [] and theirs["usage"]["totals"]["calls"] == 0

    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 100
    day = (await gql.data(QUOTA, token=token))["quota"]["day"]
    assert day["spent"] and day["tokens"] == {"limit": 100, "used": 100, "remaining": 0}
    assert day["cost"] == {"limit": None, "used": "0.2500000000", "remaining": None}
    bad = await gql.execute(USAGE, {"from": "nope", "groupBy": "DAY"}, token=token)
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"


async def test_send_message_past_the_quota_is_a_graphql_error(
    gql, llm, token, user, conversation, settings
):
    settings.CONFAB_QUOTA_COST_PER_DAY = "0.25"
    await sync_to_async(spend)(user, 1)
    body = await gql.execute(SEND, {"id": conversation.pk, "content": "hi"}, token=token)
    [error] = body["errors"]
    extensions = error["extensions"]
    assert extensions["code"] == "QUOTA_EXCEEDED" and extensions["type"] == "rate_limited"
    resets = quota.resets_at("day", quota.now())
    assert extensions["resetsAt"] == resets.isoformat().replace("+00:00", "Z")
    assert (extensions["period"], extensions["metric"]) == ("day", "cost")
    assert extensions["retryAfter"] >= 1
    assert await ConversationMessage.objects.filter(conversation_id=conversation.pk).acount() == 0
    assert llm.requests == []
