"""`/api/v1/usage/` and `/api/v1/usage/quota/`, and a turn refused over REST when the
quota is spent: 429 QUOTA_EXCEEDED with resets_at and Retry-After, nothing stored."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from conversations.llm.registry import LanguageModel
from conversations.models import ConversationMessage
from conversations.usage import quota
from conversations.usage.services import record_usage
from tests.support.rest import assert_error, bearer

pytestmark = pytest.mark.django_db(transaction=True)


def spend(user, tokens: int, *, conversation_id=None, model="m", cost="0.01") -> None:
    record_usage(
        user_id=user.pk, conversation_id=conversation_id, message_id=None, model=model,
        kind="turn", input_tokens=tokens, output_tokens=0, cost=Decimal(cost),
    )  # fmt: skip


async def test_a_rest_turn_shows_in_the_report(asgi, llm, token, other_token, conversation):
    await LanguageModel.objects.acreate(
        name="test-model", provider="openai", context_window=128_000, max_output_tokens=4_096,
        input_price_per_million=Decimal("1"), output_price_per_million=Decimal("2"),
    )  # fmt: skip
    llm.reply_text(["hi"], usage=(300, 40))
    sent = await asgi.post(
        f"/api/v1/conversations/{conversation.pk}/messages/",
        json={"content": "hello"},
        headers=bearer(token),
    )
    assert sent.status_code == 201, sent.text
    body = (await asgi.get("/api/v1/usage/", headers=bearer(token))).json()
    assert body["group_by"] == "day"
    assert body["totals"] == {
        "calls": 1,
        "input_tokens": 300,
        "output_tokens": 40,
        "total_tokens": 340,
        "cost": "0.0003800000",
    }
    today = quota.period_start("day", quota.now())
    assert body["start"] == today.replace(day=1).isoformat() and body["end"] == today.isoformat()
    assert [g["key"] for g in body["groups"]] == [today.isoformat()]
    by_model = (await asgi.get("/api/v1/usage/?group_by=model", headers=bearer(token))).json()
    assert [(g["key"], g["total_tokens"]) for g in by_model["groups"]] == [("test-model", 340)]
    by_conversation = (
        await asgi.get("/api/v1/usage/?group_by=conversation", headers=bearer(token))
    ).json()
    assert [(g["key"], g["title"]) for g in by_conversation["groups"]] == [
        (str(conversation.pk), "Test chat")
    ]
    # Nobody else's usage is ever visible.
    theirs = (await asgi.get("/api/v1/usage/", headers=bearer(other_token))).json()
    assert theirs["groups"] == [] and theirs["totals"]["calls"] == 0


async def test_the_report_validates_its_query(asgi, token):
    for query, field in [
        ("group_by=week", "group_by"),
        ("from=yesterday", "from"),
        ("from=2026-03-02&to=2026-03-01", "to"),
        ("from=2024-01-01&to=2026-01-01", "to"),
    ]:
        body = assert_error(
            await asgi.get(f"/api/v1/usage/?{query}", headers=bearer(token)),
            400,
            "VALIDATION_ERROR",
        )
        assert field in body["fields"]
    ok = await asgi.get("/api/v1/usage/?from=2026-03-01&to=2026-03-31", headers=bearer(token))
    assert ok.status_code == 200 and ok.json()["end"] == "2026-03-31"
    assert (await asgi.get("/api/v1/usage/")).status_code == 401
    assert (await asgi.get("/api/v1/usage/quota/")).status_code == 401


async def test_the_quota_shows_what_is_left(asgi, token, user, settings):
    unlimited = (await asgi.get("/api/v1/usage/quota/", headers=bearer(token))).json()
    assert unlimited["day"]["tokens"] == {"limit": None, "used": 0, "remaining": None}
    assert unlimited["month"]["cost"]["limit"] is None and not unlimited["day"]["spent"]
    assert unlimited["in_flight"] == {"turns": 0, "tokens": 0, "cost": "0.0000000000"}
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 1_000
    settings.CONFAB_QUOTA_COST_PER_MONTH = "1.00"
    await sync_to_async(spend)(user, 250)
    body = (await asgi.get("/api/v1/usage/quota/", headers=bearer(token))).json()
    assert body["day"]["tokens"] == {"limit": 1_000, "used": 250, "remaining": 750}
    assert body["month"]["cost"] == {
        "limit": "1.0000000000",
        "used": "0.0100000000",
        "remaining": "0.9900000000",
    }
    now = quota.now()
    assert body["day"]["resets_at"] == quota.resets_at("day", now).isoformat().replace(
        "+00:00", "Z"
    )
    assert body["month"]["starts_at"].startswith(now.date().replace(day=1).isoformat())


async def test_a_turn_past_the_quota_is_429_and_stores_nothing(
    asgi, llm, token, user, conversation, settings
):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 100
    await sync_to_async(spend)(user, 100)
    url = f"/api/v1/conversations/{conversation.pk}/messages/"
    for headers in (bearer(token), {**bearer(token), "Accept": "text/event-stream"}):
        response = await asgi.post(url, json={"content": "hi"}, headers=headers)
        body = assert_error(response, 429, "QUOTA_EXCEEDED")
        assert body["type"] == "rate_limited"
        assert (body["period"], body["metric"]) == ("day", "tokens")
        resets = quota.resets_at("day", quota.now())
        assert body["resets_at"] == resets.isoformat().replace("+00:00", "Z")
        assert 1 <= int(response.headers["Retry-After"]) <= 86_400
    assert await ConversationMessage.objects.filter(conversation_id=conversation.pk).acount() == 0
    quota_now = (await asgi.get("/api/v1/usage/quota/", headers=bearer(token))).json()
    assert quota_now["day"]["spent"] and quota_now["day"]["tokens"]["remaining"] == 0
    assert llm.requests == []


def test_the_admin_shows_the_top_users_and_edits_quotas(client, user, other_user):
    from django.contrib.auth import get_user_model

    from conversations.usage.models import UserQuota

    spend(user, 10, cost="0.50")
    spend(other_user, 9_000, cost="0.10")
    spend(other_user, 1_000, model="n", cost="0.10")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(root)
    page = client.get("/admin/conversations/usageday/").content.decode()
    table = page[page.index('id="usage-top-users"') :]
    # By cost first: alice's 0.50 before mallory's 0.20, with 10,000 tokens.
    assert table.index("alice") < table.index("mallory")
    assert "10000" in table
    assert client.get("/admin/conversations/usagerecord/").status_code == 200
    response = client.post(
        "/admin/conversations/userquota/add/",
        {"user": user.pk, "tokens_per_day": "5000", "cost_per_month": "3.5"},
    )
    assert response.status_code == 302, response.content[:500]
    override = UserQuota.objects.get(user=user)
    assert override.tokens_per_day == 5000 and override.tokens_per_day is not None
    assert client.get("/admin/conversations/userquota/").status_code == 200
