"""Tool approval (issue 20.3): a turn pauses on a call that needs the user's approval,
keeps nothing in memory while it waits, and resumes from the stored state when the user
(or the timeout) decides. Talks to the real fake OpenAI server; nothing is mocked."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from langchain_core.messages import ToolMessage

from conversations.approvals.models import ToolApproval
from conversations.approvals.selectors import paused_turn_human
from conversations.codec import decode_message
from conversations.events import conversation_group, user_group
from conversations.models import Agent, Conversation, ConversationMessage, MessageStatus
from conversations.recovery import recover_once
from conversations.services import create_conversation
from conversations.turns import (
    cancel_turn,
    decide_tool_call,
    engine,
    expire_tool_calls,
    start_turn,
    wait_for_result,
)
from conversations.usage.models import UsageRecord
from core.errors import NotFound, ToolCallAlreadyDecided, TurnInProgress
from tests.support.approvals import guarded_agent, turn_ended
from tests.support.fakeopenai import ToolCall
from tests.support.turns import GroupListener, eventually, turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def conversation(user) -> Conversation:
    return create_conversation(user=user, agent=guarded_agent(), title="Approval")


def rows(conversation_id: int) -> list[ConversationMessage]:
    return list(ConversationMessage.objects.filter(conversation_id=conversation_id).order_by("id"))


async def arows(conversation_id: int) -> list[ConversationMessage]:
    return await sync_to_async(rows)(conversation_id)


async def paused_turn(llm, conversation, *calls: ToolCall, content: str = "What is 6*7?"):
    """Start a turn whose reply calls `calls` and wait until it paused."""
    llm.reply_tool_calls(list(calls or [ToolCall("calculator", {"expression": "6*7"}, id="c1")]))
    handle = await start_turn(conversation=conversation, content=content)
    result = await wait_for_result(handle, timeout=10)
    await eventually(lambda: not engine._RUNNING, what="the turn's task to end")
    return handle, result


async def test_a_call_needing_approval_pauses_the_turn(llm, conversation):
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        handle, result = await paused_turn(llm, conversation)
        requested = await listener.until_type("tool.approval_requested")
    ai = result.ai_message
    assert ai.status == MessageStatus.AWAITING_APPROVAL
    assert decode_message(ai.content).tool_calls[0]["id"] == "c1"
    assert requested == {
        "type": "tool.approval_requested",
        "conversation_id": conversation.pk,
        "message_id": ai.id,
        "turn_id": str(handle.turn_id),
        "calls": [
            {
                "call_id": "c1",
                "name": "calculator",
                "arguments": {"expression": "6*7"},
                "message_id": ai.id,
                "decision": None,
                "decided_by": None,
                "reason": "",
                "decided_at": None,
                "deadline": requested["calls"][0]["deadline"],
            }
        ],
    }
    # The tool did not run; only one model call; nothing runs in this process.
    assert [r.role for r in await arows(conversation.pk)] == ["human", "ai"]
    assert len(llm.requests) == 1
    assert engine.running_turn_count() == 0 and engine.admitted_turn_count() == 0
    # The turn still holds the conversation: a new message is TURN_IN_PROGRESS.
    stored = await Conversation.objects.aget(pk=conversation.pk)
    assert stored.active_turn_id == handle.turn_id
    with pytest.raises(TurnInProgress):
        await start_turn(conversation=conversation, content="Hello?")
    # The recovery sweep leaves a paused turn alone (no worker to lose).
    assert await sync_to_async(recover_once)(stale_after=0) == 0
    assert (await ConversationMessage.objects.aget(pk=ai.pk)).status == "awaiting_approval"


async def test_the_request_reaches_the_users_group_too(llm, conversation, user):
    async with GroupListener(user_group(user.pk)) as listener:
        await paused_turn(llm, conversation)
        event = await listener.until_type("tool.approval_requested")
    assert event["calls"][0]["call_id"] == "c1"


async def test_approve_runs_the_tool_and_the_model_gets_its_result(llm, conversation, user):
    _, result = await paused_turn(llm, conversation)
    llm.reply_text(["It is 42."])
    async with GroupListener(conversation_group(conversation.pk)) as listener:
        approval = await decide_tool_call(
            user=user, conversation_id=conversation.pk, call_id="c1", approve=True
        )
        final = await turn_ended(conversation)
        decided = await listener.until_type("tool.approval_decided")
    assert approval.decision == "approved" and approval.decided_by == "user"
    assert decided["call"]["decision"] == "approved"
    human, call, output, answer = await arows(conversation.pk)
    assert call.pk == result.ai_message.pk and call.status == MessageStatus.COMPLETE
    assert {r.turn_id for r in (human, call, output, answer)} == {result.ai_message.turn_id}
    assert decode_message(output.content).content == "42"
    assert answer.pk == final.pk and final.text == "It is 42." and final.status == "complete"
    second = llm.requests[1]
    assert second.messages[-1] == {"role": "tool", "tool_call_id": "c1", "content": "42"}
    assert second.messages[-2]["tool_calls"][0]["id"] == "c1"
    stored = await Conversation.objects.aget(pk=conversation.pk)
    assert stored.message_count == 4 and stored.active_turn_id is None


async def test_both_model_calls_of_a_paused_turn_are_charged(llm, conversation, user):
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="c1")], usage=(30, 5))
    handle = await start_turn(conversation=conversation, content="What is 6*7?")
    paused = (await wait_for_result(handle, timeout=10)).ai_message
    await eventually(lambda: not engine._RUNNING, what="the turn's task to end")
    llm.reply_text(["It is 42."], usage=(50, 4))
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=True)
    final = await turn_ended(conversation)
    records = [
        (r.message_id, r.kind, r.input_tokens, r.output_tokens)
        async for r in UsageRecord.objects.filter(user=user).order_by("id")
    ]
    assert records == [(paused.pk, "turn", 30, 5), (final.pk, "turn", 50, 4)]


async def test_deny_passes_the_denial_to_the_model(llm, conversation, user):
    await paused_turn(llm, conversation)
    llm.reply_text(["Alright, I will not."])
    await decide_tool_call(
        user=user, conversation_id=conversation.pk, call_id="c1", approve=False, reason="no"
    )
    final = await turn_ended(conversation)
    _, _, output, answer = await arows(conversation.pk)
    denial = decode_message(output.content)
    assert isinstance(denial, ToolMessage) and denial.status == "error"
    assert denial.content == "The user denied this tool call. The user said: no"
    assert llm.requests[1].messages[-1]["content"] == denial.content
    assert final.pk == answer.pk and final.text == "Alright, I will not."


async def test_a_second_decision_is_a_conflict(llm, conversation, user):
    await paused_turn(llm, conversation)
    llm.reply_text(["Done."])
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=False)
    for approve in (True, False):
        with pytest.raises(ToolCallAlreadyDecided) as error:
            await decide_tool_call(
                user=user, conversation_id=conversation.pk, call_id="c1", approve=approve
            )
        assert error.value.status == 409 and error.value.code == "TOOL_CALL_ALREADY_DECIDED"
    await turn_ended(conversation)
    assert len(llm.requests) == 2  # resumed once


async def test_another_users_call_is_not_found(llm, conversation, other_user, user):
    await paused_turn(llm, conversation)
    with pytest.raises(NotFound):
        await decide_tool_call(
            user=other_user, conversation_id=conversation.pk, call_id="c1", approve=True
        )
    with pytest.raises(NotFound):
        await decide_tool_call(
            user=user, conversation_id=conversation.pk, call_id="nope", approve=True
        )
    assert (await ToolApproval.objects.aget(call_id="c1")).decision == ""
    await cancel_turn(conversation=conversation)


async def test_the_timeout_denies_and_resumes(llm, conversation, settings):
    settings.CONFAB_TOOL_APPROVAL_TIMEOUT = 0
    await paused_turn(llm, conversation)
    llm.reply_text(["You did not answer."])
    assert await expire_tool_calls() == 1
    final = await turn_ended(conversation)
    approval = await ToolApproval.objects.aget(call_id="c1")
    assert (approval.decision, approval.decided_by) == ("denied", "timeout")
    assert "did not approve this tool call in time" in llm.requests[1].messages[-1]["content"]
    assert final.text == "You did not answer."
    assert await expire_tool_calls() == 0


async def test_a_late_approval_is_denied_by_the_timeout(llm, conversation, user, settings):
    """The sweep may not have run yet: the deadline is checked when the user decides."""
    settings.CONFAB_TOOL_APPROVAL_TIMEOUT = 0
    await paused_turn(llm, conversation)
    llm.reply_text(["Too late."])
    with pytest.raises(ToolCallAlreadyDecided):
        await decide_tool_call(
            user=user, conversation_id=conversation.pk, call_id="c1", approve=True
        )
    await turn_ended(conversation)
    approval = await ToolApproval.objects.aget(call_id="c1")
    assert (approval.decision, approval.decided_by) == ("denied", "timeout")


async def test_calls_without_approval_wait_with_the_others_and_run_on_resume(
    llm, conversation, user
):
    await paused_turn(
        llm,
        conversation,
        ToolCall("current_time", {"timezone": "UTC"}, id="t1"),
        ToolCall("calculator", {"expression": "1+1"}, id="c1"),
    )
    assert [a.call_id async for a in ToolApproval.objects.all()] == ["c1"]
    llm.reply_text(["Both done."])
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=True)
    await turn_ended(conversation)
    results = [m for m in llm.requests[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ["t1", "c1"]
    assert results[1]["content"] == "2"


async def test_each_call_waits_for_its_own_decision(llm, conversation, user):
    await paused_turn(
        llm,
        conversation,
        ToolCall("calculator", {"expression": "1+1"}, id="c1"),
        ToolCall("calculator", {"expression": "2+2"}, id="c2"),
    )
    llm.reply_text(["Half."])
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=True)
    assert len(llm.requests) == 1  # c2 still waits
    assert (await Conversation.objects.aget(pk=conversation.pk)).active_turn_id is not None
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c2", approve=False)
    await turn_ended(conversation)
    contents = [m["content"] for m in llm.requests[1].messages if m["role"] == "tool"]
    assert contents == ["2", "The user denied this tool call."]


async def test_a_later_round_pauses_and_resumes_with_the_whole_turn(llm, conversation, user):
    """A call needing approval in the second round: the resumed turn sends the first
    round's call and result too, and counts its rounds."""
    llm.reply_tool_calls([ToolCall("current_time", {"timezone": "UTC"}, id="t1")])
    await paused_turn(llm, conversation, ToolCall("calculator", {"expression": "3*3"}, id="c1"))
    llm.reply_text(["Nine."])
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=True)
    await turn_ended(conversation)
    last = llm.requests[-1].messages
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert last[-1]["content"] == "9"


async def test_a_message_queued_during_the_turn_is_not_taken_for_its_question(
    llm, conversation, user
):
    """Sent (enqueued) while the first round ran, a message is stored between the turn's
    rows: the resumed turn still answers its own question, each of its rows sent once."""
    llm.reply_tool_calls(
        [ToolCall("current_time", {"timezone": "UTC"}, id="t1")], initial_delay=0.5
    )
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "3*3"}, id="c1")])
    handle = await start_turn(conversation=conversation, content="What is 3*3?")
    await eventually(
        lambda: ConversationMessage.objects.filter(turn_id=handle.turn_id, role="ai").aexists(),
        what="the turn's first reply row",
    )
    queued = await start_turn(conversation=conversation, content="And later?", on_busy="enqueue")
    assert queued.queued
    await wait_for_result(handle, timeout=10)
    await eventually(lambda: not engine._RUNNING, what="the turn's task to end")
    sent = len(llm.requests)
    llm.reply_text(["Nine."])
    llm.reply_text(["Later."])
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=True)
    await eventually(lambda: len(llm.requests) > sent, what="the resumed round")
    resumed = llm.requests[sent].messages
    assert [m["role"] for m in resumed] == [
        "system", "user", "assistant", "tool", "assistant", "tool"
    ]  # fmt: skip
    assert resumed[1]["content"] == "What is 3*3?"
    await turn_ended(conversation)
    # The hooks and the title get the turn's own question, not the queued message.
    asked = await sync_to_async(paused_turn_human)(conversation.pk, handle.turn_id)
    assert asked.text == "What is 3*3?" and asked.pk < queued.human_message.pk


async def test_cancel_ends_a_paused_turn(llm, conversation):
    _, result = await paused_turn(llm, conversation)
    await cancel_turn(conversation=conversation)
    ai = await ConversationMessage.objects.aget(pk=result.ai_message.pk)
    assert ai.status == MessageStatus.CANCELLED
    approval = await ToolApproval.objects.aget(call_id="c1")
    assert (approval.decision, approval.decided_by) == ("denied", "cancel")
    assert (await Conversation.objects.aget(pk=conversation.pk)).active_turn_id is None
    # The conversation goes on; the unanswered call is left out of the model's context.
    llm.reply_text(["Hi."])
    handle = await start_turn(conversation=conversation, content="Hi")
    assert (await wait_for_result(handle, timeout=10)).ai_message.text == "Hi."
    assert [m["role"] for m in llm.requests[-1].messages] == ["system", "user", "user"]


async def test_nothing_in_memory_a_restarted_worker_resumes(llm, conversation, user, monkeypatch):
    """No process holds a paused turn: with this process's turn registries emptied (a
    restarted worker), a decision still resumes it from the database."""
    await paused_turn(llm, conversation)
    engine._RUNNING.clear()
    monkeypatch.setattr(engine, "_ADMISSION", engine._Admission())
    llm.reply_text(["Resumed."])
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=True)
    assert (await turn_ended(conversation)).text == "Resumed."


async def test_the_pause_is_announced_to_the_webhook(llm, conversation, settings):
    """The user may be away: a pause is queued for push and the webhook like a reply."""
    from conversations.notifications.models import Notification

    settings.CONFAB_WEBHOOK_URL = "http://127.0.0.1:9/hook"
    _, result = await paused_turn(llm, conversation)
    row = await Notification.objects.aget()
    assert row.event_type == "tool.approval_requested"
    assert row.payload["data"]["message"]["id"] == result.ai_message.pk
    assert row.payload["data"]["message"]["status"] == "awaiting_approval"
    await cancel_turn(conversation=conversation)


def test_an_agent_lists_tools_needing_approval_as_names(db):
    from django.core.exceptions import ValidationError

    agent = Agent(slug="bad", name="Bad", system_prompt_template="x", tools_requiring_approval="*")
    with pytest.raises(ValidationError) as error:
        agent.clean()
    assert "tools_requiring_approval" in error.value.message_dict
    agent.tools_requiring_approval = ["*", "calculator"]
    agent.clean()


async def test_resuming_passes_admission_and_records_nothing_when_refused(
    llm, conversation, user, settings
):
    """A decision resumes a turn in this process: at capacity it is refused (503) before
    anything is recorded, and the user can decide again later."""
    from core.errors import TurnCapacityReached

    await paused_turn(llm, conversation)
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 0
    with pytest.raises(TurnCapacityReached):
        await decide_tool_call(
            user=user, conversation_id=conversation.pk, call_id="c1", approve=True
        )
    assert (await ToolApproval.objects.aget(call_id="c1")).decision == ""
    assert engine.admitted_turn_count() == 0
    settings.CONFAB_MAX_TURNS_PER_PROCESS = 10
    llm.reply_text(["Now."])
    await decide_tool_call(user=user, conversation_id=conversation.pk, call_id="c1", approve=True)
    assert (await turn_ended(conversation)).text == "Now."
