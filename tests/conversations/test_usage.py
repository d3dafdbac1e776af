"""Usage and quotas (conversations/usage): every model call's tokens and cost are
recorded through real turns against the fake OpenAI server's usage numbers; the quota
refuses a turn before anything is stored, lets a reply that runs past it finish, and
admits at most the quota from a burst of concurrent turns."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.llm.registry import LanguageModel
from conversations.models import Agent, Conversation, ConversationMessage, MessageStatus
from conversations.turns import start_greeting, start_turn, wait_for_result
from conversations.usage import quota
from conversations.usage.models import QuotaReservation, UsageDay, UsageRecord, UserQuota
from conversations.usage.selectors import quota_payload, quota_state, usage_report
from conversations.usage.services import record_usage
from core.errors import QuotaExceeded
from tests.support.fakeopenai import ToolCall
from tests.support.sockets import Socket, ws_path
from tests.support.turns import eventually, turn_cleanup  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def priced(db) -> LanguageModel:
    """The plain agent's model in the registry, with prices (USD per million tokens)."""
    return LanguageModel.objects.create(
        name="test-model",
        provider="openai",
        context_window=128_000,
        max_output_tokens=4_096,
        input_price_per_million=Decimal("2.50"),
        output_price_per_million=Decimal("10.00"),
    )


@pytest.fixture
def roomy(settings):
    """Room for a burst of one user's turns in this process."""
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 100
    settings.CONFAB_MAX_TURNS_PER_USER = 100


async def records(user) -> list[UsageRecord]:
    return [r async for r in UsageRecord.objects.filter(user=user).order_by("id")]


async def stored(conversation) -> int:
    return await ConversationMessage.objects.filter(conversation_id=conversation.pk).acount()


async def new_conversations(user, agent, count: int) -> list:
    create = sync_to_async(services.create_conversation)
    return [await create(user=user, agent=agent, title=f"c{i}") for i in range(count)]


def spend(user, tokens: int, cost: str = "0", *, at: datetime | None = None, model="m") -> None:
    record_usage(
        user_id=user.pk,
        conversation_id=None,
        message_id=None,
        model=model,
        kind="turn",
        input_tokens=tokens,
        output_tokens=0,
        cost=Decimal(cost),
        at=at,
    )


# --- recording ----------------------------------------------------------------------------


async def test_a_turn_records_its_tokens_and_their_cost_from_the_registry(
    llm, user, conversation, priced
):
    llm.reply_text(["Hel", "lo"], usage=(1000, 200))
    result = await wait_for_result(await start_turn(conversation=conversation, content="hi"))
    assert result.ai_message.status == MessageStatus.COMPLETE
    (record,) = await records(user)
    assert (record.kind, record.model) == ("turn", "test-model")
    assert (record.input_tokens, record.output_tokens) == (1000, 200)
    # 1000 x $2.50/M + 200 x $10/M
    assert record.cost == Decimal("0.0045")
    assert (record.conversation_id, record.message_id) == (conversation.pk, result.ai_message.pk)
    day = await UsageDay.objects.aget(user=user)
    assert (day.calls, day.input_tokens, day.output_tokens) == (1, 1000, 200)
    assert day.cost == Decimal("0.0045") and day.conversation_id == conversation.pk
    assert day.day == record.created_at.astimezone(UTC).date()


async def test_every_model_call_of_a_turn_is_recorded_and_rolled_up(llm, user, priced):
    agent = await Agent.objects.acreate(
        slug="calc", name="Calc", system_prompt_template="Calc.", model="test-model",
        tools=["calculator"],
    )  # fmt: skip
    (conversation,) = await new_conversations(user, agent, 1)
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "2+2"}, id="c1")], usage=(100, 10))
    llm.reply_text(["4"], usage=(150, 5))
    await wait_for_result(await start_turn(conversation=conversation, content="2+2?"))
    calls = await records(user)
    assert [(r.input_tokens, r.output_tokens) for r in calls] == [(100, 10), (150, 5)]
    assert len({r.message_id for r in calls}) == 2  # the tool-call reply and the answer
    day = await UsageDay.objects.aget(user=user)
    assert (day.calls, day.input_tokens, day.output_tokens) == (2, 250, 15)
    assert day.cost == sum((r.cost for r in calls), Decimal(0))


async def test_regenerates_and_greetings_are_recorded_as_such(
    llm, user, conversation, tutor_conversation, settings
):
    # Neither model is in the registry here: the prices come from settings.
    settings.CONFAB_PRICE_INPUT_PER_MILLION = "1"
    settings.CONFAB_PRICE_OUTPUT_PER_MILLION = "3"
    llm.reply_text(["one"], usage=(10, 1))
    await wait_for_result(await start_turn(conversation=conversation, content="q"))
    llm.reply_text(["two"], usage=(20, 2))
    await wait_for_result(await start_turn(conversation=conversation, regenerate=True))
    llm.reply_text(["안녕"], usage=(30, 3))
    greeting = await start_greeting(conversation=tutor_conversation)
    await wait_for_result(greeting)
    calls = await records(user)
    assert [(r.kind, r.input_tokens) for r in calls] == [
        ("turn", 10),
        ("regenerate", 20),
        ("greeting", 30),
    ]
    assert calls[2].model == "gpt-4o" and calls[2].conversation_id == tutor_conversation.pk
    assert calls[1].cost == Decimal("0.000026")  # (20 x 1 + 2 x 3) / 1M


async def test_an_automatic_title_is_recorded_as_a_title_call(llm, user, plain_agent, settings):
    from conversations.titles.generation import drain

    settings.CONFAB_AUTO_TITLES = True
    untitled = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    llm.reply_text(["Knead, bake."], usage=(12, 3))
    llm.reply_text(["Baking bread"], usage=(40, 4))
    await wait_for_result(await start_turn(conversation=untitled, content="Bread?"))
    await drain()
    await eventually(
        lambda: UsageRecord.objects.filter(kind="title").aexists(), what="the title's call"
    )
    calls = [(r.kind, r.input_tokens, r.output_tokens) for r in await records(user)]
    assert calls == [("turn", 12, 3), ("title", 40, 4)]
    title = (await records(user))[1]
    assert title.conversation_id == untitled.pk and title.message_id is None
    assert (await Conversation.objects.aget(pk=untitled.pk)).title == "Baking bread"


async def test_no_title_is_asked_for_once_the_quota_is_used_up(llm, user, plain_agent, settings):
    from conversations.titles.generation import drain

    settings.CONFAB_AUTO_TITLES = True
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 100
    untitled = await sync_to_async(services.create_conversation)(user=user, agent=plain_agent)
    # The reply itself runs past the quota (it finishes); the title would spend more.
    llm.reply_text(["Knead, bake."], usage=(90, 30))
    await wait_for_result(await start_turn(conversation=untitled, content="Bread?"))
    await drain()
    assert len(llm.requests) == 1  # no title request reached the provider
    calls = [(r.kind, r.input_tokens, r.output_tokens) for r in await records(user)]
    assert calls == [("turn", 90, 30)]
    stored = await Conversation.objects.aget(pk=untitled.pk)
    # Not named, and the attempt is left for a reply after the quota resets.
    assert stored.title == "" and stored.title_attempted_at is None


# --- the report ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_report_groups_by_day_model_and_conversation(user, other_user, conversation):
    first = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    second = datetime(2026, 3, 2, 0, 1, tzinfo=UTC)
    for at, model, tokens, conv in [
        (first, "a", 100, conversation.pk),
        (first, "b", 50, conversation.pk),
        (second, "a", 7, None),
        (second, "a", 3, conversation.pk),
    ]:
        record_usage(
            user_id=user.pk, conversation_id=conv, message_id=None, model=model, kind="turn",
            input_tokens=tokens, output_tokens=1, cost=Decimal("0.001"), at=at,
        )  # fmt: skip
    spend(other_user, 10_000, "9", at=first)  # never in alice's report

    def report(group_by: str) -> dict:
        return usage_report(
            user=user, start=date(2026, 3, 1), end=date(2026, 3, 31), group_by=group_by
        )

    by_day = report("day")
    assert [(g["key"], g["input_tokens"], g["calls"]) for g in by_day["groups"]] == [
        ("2026-03-01", 150, 2),
        ("2026-03-02", 10, 2),
    ]
    assert by_day["totals"] == {
        "calls": 4,
        "input_tokens": 160,
        "output_tokens": 4,
        "total_tokens": 164,
        "cost": Decimal("0.0040000000"),
    }
    assert [(g["key"], g["total_tokens"]) for g in report("model")["groups"]] == [
        ("a", 113),
        ("b", 51),
    ]
    by_conversation = report("conversation")["groups"]
    assert [(g["key"], g["title"], g["input_tokens"]) for g in by_conversation] == [
        ("", None, 7),
        (str(conversation.pk), "Test chat", 153),
    ]
    only_first = usage_report(
        user=user, start=date(2026, 3, 1), end=date(2026, 3, 1), group_by="day"
    )
    assert only_first["totals"]["input_tokens"] == 150


# --- the quota ----------------------------------------------------------------------------


async def test_a_turn_past_the_quota_is_refused_and_nothing_is_stored(
    llm, user, conversation, settings
):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 1_000
    await sync_to_async(spend)(user, 1_000)
    with pytest.raises(QuotaExceeded) as refused:
        await start_turn(conversation=conversation, content="one more")
    error = refused.value
    assert (error.status, error.code) == (429, "QUOTA_EXCEEDED")
    tomorrow = quota.resets_at("day", quota.now())
    assert error.extra["resets_at"] == tomorrow.isoformat().replace("+00:00", "Z")
    assert (error.extra["period"], error.extra["metric"]) == ("day", "tokens")
    assert 1 <= error.extra["retry_after"] <= 86_400
    assert error.as_dict()["resets_at"] == error.extra["resets_at"]
    assert await stored(conversation) == 0
    assert not await QuotaReservation.objects.aexists()
    assert llm.requests == []

    # An override in the admin lifts it for this user.
    await UserQuota.objects.acreate(user=user, tokens_per_day=5_000)
    llm.reply_text(["ok"])
    result = await wait_for_result(await start_turn(conversation=conversation, content="now"))
    assert result.ai_message.status == MessageStatus.COMPLETE


async def test_a_spent_month_of_cost_refuses_until_the_month_resets(
    llm, user, conversation, settings
):
    settings.CONFAB_QUOTA_COST_PER_MONTH = "0.50"
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 10
    await sync_to_async(spend)(user, 10, "0.50")
    with pytest.raises(QuotaExceeded) as refused:
        await start_turn(conversation=conversation, content="q")
    # Both are spent: the month is what the user waits for.
    assert (refused.value.extra["period"], refused.value.extra["metric"]) == ("month", "cost")
    next_month = quota.resets_at("month", quota.now())
    assert next_month.day == 1 and next_month > quota.now()
    await UserQuota.objects.acreate(user=user, unlimited=True)
    llm.reply_text(["free"])
    await wait_for_result(await start_turn(conversation=conversation, content="q"))


async def test_a_reply_that_runs_past_the_quota_finishes(llm, user, conversation, settings):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 100
    settings.CONFAB_QUOTA_TURN_RESERVE_TOKENS = 10
    llm.reply_text(["a long ", "answer"], usage=(400, 400), chunk_delay=0.05)
    result = await wait_for_result(await start_turn(conversation=conversation, content="q"))
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert result.ai_message.text == "a long answer"  # not cut
    state = await sync_to_async(quota_state)(user.pk)
    assert state.used["day"]["tokens"] == 800
    assert quota_payload(state)["day"]["tokens"] == {"limit": 100, "used": 800, "remaining": 0}
    with pytest.raises(QuotaExceeded):
        await start_turn(conversation=conversation, content="next")


async def test_turns_in_flight_count_as_their_reservation(llm, user, conversation, settings):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 1_000
    settings.CONFAB_QUOTA_TURN_RESERVE_TOKENS = 300
    llm.reply_text(["slow"], usage=(5, 5), initial_delay=0.5)
    handle = await start_turn(conversation=conversation, content="q")
    during = quota_payload(await sync_to_async(quota_state)(user.pk))
    assert during["in_flight"]["turns"] == 1 and during["in_flight"]["tokens"] == 300
    assert during["day"]["tokens"]["remaining"] == 700
    # Three more reservations would not fit: refused, with a short wait (turns end soon).
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 300
    (other,) = await new_conversations(user, conversation.agent, 1)
    with pytest.raises(QuotaExceeded) as refused:
        await start_turn(conversation=other, content="q")
    assert refused.value.extra["retry_after"] <= 5
    assert refused.value.extra["resets_at"] == quota.resets_at(
        "day", quota.now()
    ).isoformat().replace("+00:00", "Z")
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 1_000
    await wait_for_result(handle)
    after = quota_payload(await sync_to_async(quota_state)(user.pk))
    assert after["in_flight"]["turns"] == 0
    assert after["day"]["tokens"] == {"limit": 1_000, "used": 10, "remaining": 990}
    assert after["month"]["tokens"]["limit"] is None and not after["month"]["spent"]


async def test_twenty_concurrent_turns_at_the_edge_admit_at_most_the_quota(
    llm, user, plain_agent, settings, roomy
):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 300
    settings.CONFAB_QUOTA_TURN_RESERVE_TOKENS = 100
    conversations = await new_conversations(user, plain_agent, 20)
    # One slow reply per turn (a script step serves one request): no admitted turn ends,
    # freeing its reservation, before the last of the twenty was decided.
    for _ in conversations:
        llm.reply_text(["answer"], usage=(10, 10), initial_delay=2.0)
    # All at once: their admissions overlap in the turn engine's database threads.
    outcomes = await asyncio.gather(
        *(start_turn(conversation=c, content="hello") for c in conversations),
        return_exceptions=True,
    )
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(admitted) == 3, outcomes
    assert all(isinstance(o, QuotaExceeded) for o in outcomes if o not in admitted)
    for handle in admitted:
        assert (await wait_for_result(handle)).ai_message.status == MessageStatus.COMPLETE
    counts = sorted([await stored(c) for c in conversations])
    assert counts == [0] * 17 + [2] * 3


async def test_twenty_concurrent_turns_one_token_below_the_limit_admit_one(
    llm, user, plain_agent, settings, roomy
):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 1_000
    await sync_to_async(spend)(user, 999)
    conversations = await new_conversations(user, plain_agent, 20)
    for _ in conversations:
        llm.reply_text(["answer"], usage=(10, 10), initial_delay=1.0)
    outcomes = await asyncio.gather(
        *(start_turn(conversation=c, content="hello") for c in conversations),
        return_exceptions=True,
    )
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(admitted) == 1
    await wait_for_result(admitted[0])
    assert sum([await stored(c) for c in conversations]) == 2


async def test_a_queued_message_is_admitted_when_sent(llm, user, conversation, settings):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 200
    settings.CONFAB_QUOTA_TURN_RESERVE_TOKENS = 100
    llm.reply_text(["first"], usage=(1, 1), initial_delay=0.4)
    running = await start_turn(conversation=conversation, content="one")
    queued = await start_turn(conversation=conversation, content="two", on_busy="enqueue")
    assert queued.queued
    # Two turns in flight (one running, one queued) hold all 200: a third is refused.
    with pytest.raises(QuotaExceeded):
        await start_turn(conversation=conversation, content="three", on_busy="enqueue")
    llm.reply_text(["second"], usage=(1, 1))
    await wait_for_result(running)
    await eventually(
        lambda: ConversationMessage.objects.filter(
            conversation_id=conversation.pk, status=MessageStatus.COMPLETE, role="ai"
        ).acount(),
        what="the queued turn answered",
    )
    await eventually(
        lambda: _counted(user.pk, 2), what="both turns recorded and their reservations gone"
    )


async def _counted(user_id: int, calls: int) -> bool:
    state = await sync_to_async(quota_state)(user_id)
    total = await UsageRecord.objects.filter(user_id=user_id).acount()
    return total == calls and state.in_flight == 0


async def test_the_websocket_and_its_greeting_refuse_in_an_error_frame(
    llm, user, conversation, tutor_conversation, token, settings
):
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 10
    await sync_to_async(spend)(user, 10)
    for convo, frame in [
        (conversation, {"type": "message", "content": "hi"}),
        (tutor_conversation, None),
    ]:
        ws = Socket(ws_path(convo.pk), token)
        assert (await ws.connect())["type"] == "ready"
        if frame is not None:
            await ws.send(frame)
        error = await ws.until("error")
        assert error["code"] == "QUOTA_EXCEEDED"
        assert error["resets_at"].endswith("Z") and error["period"] == "day"
        assert error["metric"] == "tokens" and error["retry_after"] >= 1
        await ws.close()
        assert await stored(convo) == 0
    assert llm.requests == []


@pytest.mark.django_db
def test_periods_are_utc_days_and_months():
    moment = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert quota.resets_at("day", moment) == datetime(2027, 1, 1, tzinfo=UTC)
    assert quota.resets_at("month", moment) == datetime(2027, 1, 1, tzinfo=UTC)
    assert quota.period_start("month", moment) == date(2026, 12, 1)
    feb = datetime(2028, 2, 10, tzinfo=UTC)
    assert quota.resets_at("month", feb) == datetime(2028, 3, 1, tzinfo=UTC)
    assert quota.resets_at("day", feb) - feb == timedelta(days=1)
