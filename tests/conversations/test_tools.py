"""Tools: the registry, the built-in tools, and the bounded tool-call loop of a turn."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from conversations.codec import decode_message
from conversations.llm.tools import REGISTRY, get_tools, register_tool
from conversations.llm.tools import bar_chart as bar_chart_tool
from conversations.llm.tools import calculator as calculator_tool
from conversations.models import Agent, ConversationMessage, MessageStatus
from conversations.services import create_conversation
from conversations.turns import TurnHooks, cancel_turn, start_turn, wait_for_result
from tests.support.fakeopenai import ToolCall
from tests.support.turns import eventually, turn_cleanup  # noqa: F401

BUILT_IN = ["calculator", "current_time", "multiplication_table", "bar_chart"]


def turn_rows(conversation_id: int) -> list[ConversationMessage]:
    return list(ConversationMessage.objects.filter(conversation_id=conversation_id).order_by("id"))


async def aturn_rows(conversation_id: int) -> list[ConversationMessage]:
    return await sync_to_async(turn_rows)(conversation_id)


@pytest.fixture
def assistant_conversation(user, assistant):
    return create_conversation(user=user, agent=assistant, title="Tools")


class RecordingHooks(TurnHooks):
    def __init__(self) -> None:
        self.tools_output: list | None = None

    async def on_conversation_complete(self, human_message, ai_message, tools_output_list):
        self.tools_output = tools_output_list


# --- the registry and the tools themselves ----------------------------------------


def test_registry_holds_the_built_in_tools():
    assert set(BUILT_IN) <= set(REGISTRY)
    assert [t.name for t in get_tools(["calculator", "no-such-tool", "bar_chart"])] == [
        "calculator",
        "bar_chart",
    ]


@pytest.mark.django_db
def test_the_assistant_agent_lists_the_built_in_tools(assistant):
    assert assistant.tools == BUILT_IN
    assert [t.name for t in get_tools(assistant.tools)] == BUILT_IN


@pytest.mark.parametrize(
    ("expression", "result"),
    [("(3 + 4) * 2.5", "17.5"), ("2 ** 10", "1024"), ("-7 // 2", "-4"), ("10 % 4", "2")],
)
def test_calculator_evaluates_arithmetic(expression, result):
    assert calculator_tool.invoke({"expression": expression}) == result


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('id')", "open('/etc/passwd')", "2 ** 1000", "x + 1", "1" * 201],
)
def test_calculator_runs_no_code(expression):
    with pytest.raises(ValueError):
        calculator_tool.invoke({"expression": expression})


def test_bar_chart_stores_an_svg_file_and_returns_a_reference(settings):
    ref = bar_chart_tool.invoke({"title": "Sales", "labels": ["a", "b"], "values": [1, 3]})
    assert ref["kind"] == "file" and ref["mime_type"] == "image/svg+xml"
    assert Path(settings.MEDIA_ROOT).parts[-2:] == ("build", "test-media")
    assert default_storage.exists(ref["path"])
    with default_storage.open(ref["path"]) as stored:
        svg = stored.read()
    assert svg.startswith(b"<svg") and b"Sales" in svg and len(svg) == ref["size"]
    assert ref["url"] == default_storage.url(ref["path"])


# --- tool calls in a turn --------------------------------------------------------------

pytestmark_turns = pytest.mark.django_db(transaction=True)


@pytestmark_turns
async def test_a_tool_call_and_its_result_are_stored_with_the_turn(llm, assistant_conversation):
    arguments = {"expression": "6 * 7"}
    llm.reply_tool_calls([ToolCall("calculator", arguments, id="call_calc", fragments=6)])
    llm.reply_text(["It is ", "42."], usage=(30, 4))
    hooks = RecordingHooks()
    handle = await start_turn(
        conversation=assistant_conversation, content="What is 6 times 7?", hooks=hooks
    )
    result = await wait_for_result(handle, timeout=10)

    human, call, output, answer = await aturn_rows(assistant_conversation.pk)
    assert [r.role for r in (human, call, output, answer)] == ["human", "ai", "tool", "ai"]
    assert {r.turn_id for r in (human, call, output, answer)} == {handle.turn_id}
    assert all(r.status == MessageStatus.COMPLETE for r in (human, call, output, answer))
    # The tool call, its arguments reassembled from 6 fragments.
    call_message = decode_message(call.content)
    assert isinstance(call_message, AIMessage)
    assert call_message.tool_calls == [
        {"name": "calculator", "args": arguments, "id": "call_calc", "type": "tool_call"}
    ]
    # The result, tied to its call.
    result_message = decode_message(output.content)
    assert isinstance(result_message, ToolMessage)
    assert result_message.tool_call_id == "call_calc"
    assert result_message.content == "42" and result_message.artifact == "42"
    assert result_message.status == "success"
    assert answer.pk == result.ai_message.pk and answer.text == "It is 42."
    assert answer.usage["input_tokens"] == 30

    first, second = llm.requests
    offered = [t["function"]["name"] for t in first.body["tools"]]
    assert offered == BUILT_IN
    # The second call carries the call and the result the model asked for.
    assistant_msg, tool_msg = second.messages[-2:]
    assert assistant_msg["tool_calls"][0]["id"] == "call_calc"
    assert json.loads(assistant_msg["tool_calls"][0]["function"]["arguments"]) == arguments
    assert tool_msg == {"role": "tool", "tool_call_id": "call_calc", "content": "42"}
    assert hooks.tools_output == [{"name": "calculator", "args": arguments, "output": "42"}]
    conv = await type(assistant_conversation).objects.aget(pk=assistant_conversation.pk)
    assert conv.message_count == 4


@pytestmark_turns
async def test_table_and_file_outputs_are_stored_as_artifacts(llm, assistant_conversation):
    llm.reply_tool_calls(
        [
            ToolCall("multiplication_table", {"number": 7, "up_to": 3}, id="call_table"),
            ToolCall(
                "bar_chart",
                {"title": "Week", "labels": ["월", "화"], "values": [2, 5]},
                id="call_chart",
            ),
        ]
    )
    llm.reply_text(["Here you go."])
    await wait_for_result(
        await start_turn(conversation=assistant_conversation, content="table and chart"),
        timeout=10,
    )
    rows = await aturn_rows(assistant_conversation.pk)
    assert [r.role for r in rows] == ["human", "ai", "tool", "tool", "ai"]
    table = decode_message(rows[2].content)
    chart = decode_message(rows[3].content)
    assert table.tool_call_id == "call_table"
    assert table.artifact == {
        "kind": "table",
        "columns": ["factor", "number", "product"],
        "records": [
            {"factor": 1, "number": 7, "product": 7},
            {"factor": 2, "number": 7, "product": 14},
            {"factor": 3, "number": 7, "product": 21},
        ],
    }
    assert chart.tool_call_id == "call_chart"
    assert chart.artifact["kind"] == "file" and chart.artifact["mime_type"] == "image/svg+xml"
    assert default_storage.exists(chart.artifact["path"])
    # The bytes live in storage, not in the row: the row holds a reference only.
    assert "<svg" not in json.dumps(rows[3].content)
    assert json.loads(chart.content)["url"] == chart.artifact["url"]


@pytestmark_turns
@pytest.mark.parametrize(
    ("call", "detail"),
    [
        (ToolCall("calculator", {"expression": "1/0"}), "ZeroDivisionError"),
        (ToolCall("rm_rf", {"path": "/"}), "Unknown tool 'rm_rf'."),
        (ToolCall("calculator", {"expr": "1+1"}), "expression"),
        (ToolCall("multiplication_table", {"number": "seven"}), "number"),
        (ToolCall("current_time", {"timezone": "Mars/Olympus"}), "Unknown time zone"),
    ],
    ids=["raises", "unknown-tool", "missing-arg", "bad-type", "tool-refuses"],
)
async def test_a_failing_tool_is_a_stored_error_result(llm, assistant_conversation, call, detail):
    call.id = "call_bad"
    llm.reply_tool_calls([call])
    llm.reply_text(["Sorry, that failed."])
    result = await wait_for_result(
        await start_turn(conversation=assistant_conversation, content="try it"), timeout=10
    )
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert result.ai_message.text == "Sorry, that failed."
    rows = await aturn_rows(assistant_conversation.pk)
    assert [r.role for r in rows] == ["human", "ai", "tool", "ai"]
    error = decode_message(rows[2].content)
    assert error.tool_call_id == "call_bad" and error.status == "error"
    assert error.artifact["kind"] == "json"
    assert error.artifact["value"]["error"] == "tool_failed"
    assert detail in error.artifact["value"]["message"]
    # The model is told about the failure, in the message answering its call.
    assert llm.requests[1].messages[-1]["tool_call_id"] == "call_bad"
    assert "tool_failed" in llm.requests[1].messages[-1]["content"]


def assert_every_call_answered(request) -> None:
    """What OpenAI enforces: each assistant tool call is followed by its tool result."""
    pending: list[str] = []
    for message in request.messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] in pending, message
            pending.remove(message["tool_call_id"])
        else:
            assert not pending, f"tool calls without results: {pending}"
        if message["role"] == "assistant":
            pending = [call["id"] for call in message.get("tool_calls") or []]
    assert not pending, f"tool calls without results: {pending}"


@pytestmark_turns
@pytest.mark.parametrize(
    "arguments", ['{"expression": "1+', '{"expression": 1+1}', "not json"], ids=str
)
async def test_arguments_that_are_not_json_are_a_stored_error_result(
    llm, assistant_conversation, arguments
):
    llm.reply_tool_calls([ToolCall("calculator", arguments, id="call_cut")])
    llm.reply_text(["Let me answer directly."])
    result = await wait_for_result(
        await start_turn(conversation=assistant_conversation, content="1+1?"), timeout=10
    )
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert result.ai_message.text == "Let me answer directly."
    rows = await aturn_rows(assistant_conversation.pk)
    assert [r.role for r in rows] == ["human", "ai", "tool", "ai"]
    assert all(r.status == MessageStatus.COMPLETE for r in rows)
    error = decode_message(rows[2].content)
    assert error.tool_call_id == "call_cut" and error.status == "error"
    assert error.artifact["value"]["error"] == "tool_failed"
    # Every request, and a later turn's history, answers every call.
    llm.reply_text(["ok"])
    later = await wait_for_result(
        await start_turn(conversation=assistant_conversation, content="and now?"), timeout=10
    )
    assert later.ai_message.status == MessageStatus.COMPLETE
    for request in llm.requests:
        assert_every_call_answered(request)
    assert len(llm.requests[-1].messages) == 1 + 5  # the whole exchange is in the window


@pytestmark_turns
async def test_the_tool_loop_is_bounded(llm, assistant_conversation, settings):
    settings.CONFAB_TOOL_MAX_ROUNDS = 2
    for i in range(3):  # the model would call tools forever
        llm.reply_tool_calls([ToolCall("calculator", {"expression": f"{i}+1"}, id=f"call_{i}")])
    result = await wait_for_result(
        await start_turn(conversation=assistant_conversation, content="loop"), timeout=10
    )
    assert len(llm.requests) == 3  # max_rounds rounds with tools, then one without
    assert "tools" in llm.requests[0].body and "tools" in llm.requests[1].body
    assert "tools" not in llm.requests[2].body
    assert result.ai_message.status == MessageStatus.COMPLETE
    rows = await aturn_rows(assistant_conversation.pk)
    assert [r.role for r in rows] == ["human", "ai", "tool", "ai", "tool", "ai"]
    # The last reply was offered no tools: calls in it did not run and are not kept.
    assert decode_message(rows[-1].content).tool_calls == []
    assert rows[-1].pk == result.ai_message.pk


# --- cancel while a tool runs ------------------------------------------------------------

tool_started = asyncio.Event()


@tool
async def slow_test_tool(seconds: float) -> str:
    """A test tool that takes a while."""
    tool_started.set()
    await asyncio.sleep(seconds)
    return "slept"


@pytest.fixture
def slow_tool():
    """`slow_test_tool` in the registry for one test."""
    register_tool(slow_test_tool)
    tool_started.clear()
    yield slow_test_tool
    REGISTRY.pop(slow_test_tool.name, None)


@pytestmark_turns
async def test_cancel_while_a_tool_runs_keeps_the_tool_call(llm, user, slow_tool):
    agent = await Agent.objects.acreate(
        slug="slow", name="Slow", system_prompt_template="Slow.", tools=["slow_test_tool"]
    )
    conversation = await sync_to_async(create_conversation)(user=user, agent=agent)
    llm.reply_tool_calls([ToolCall("slow_test_tool", {"seconds": 0.5}, id="call_slow")])
    handle = await start_turn(conversation=conversation, content="slowly")
    await eventually(tool_started.is_set, what="the tool to start")
    await cancel_turn(conversation=conversation)
    result = await wait_for_result(handle, timeout=10)

    rows = await aturn_rows(conversation.pk)
    assert [r.role for r in rows] == ["human", "ai", "tool", "ai"]
    call, output, last = rows[1:]
    # The finished tool-call reply and its result are kept as they were...
    assert call.status == MessageStatus.COMPLETE
    assert decode_message(call.content).tool_calls[0]["id"] == "call_slow"
    assert decode_message(output.content).tool_call_id == "call_slow"
    # ...and the turn ends with a cancelled reply, no further provider call.
    assert last.status == MessageStatus.CANCELLED and last.pk == result.ai_message.pk
    assert len(llm.requests) == 1
    conv = await type(conversation).objects.aget(pk=conversation.pk)
    assert conv.active_turn_id is None and conv.message_count == 4


@pytestmark_turns
async def test_a_tool_turns_events(llm, assistant_conversation):
    from conversations.events import conversation_group
    from tests.support.turns import GroupListener

    llm.reply_tool_calls([ToolCall("calculator", {"expression": "2+2"}, id="call_ev")])
    llm.reply_text(["Four."])
    async with GroupListener(conversation_group(assistant_conversation.pk)) as listener:
        handle = await start_turn(conversation=assistant_conversation, content="2+2?")
        await wait_for_result(handle, timeout=10)
        await listener.until(
            lambda e: e["type"] == "message.completed" and e["message"]["text"] == "Four."
        )
    messages = [
        (e["type"], e["message"]["role"], e["message"]["status"])
        for e in listener.events
        if "message" in e
    ]
    assert messages == [
        ("message.created", "human", "complete"),
        ("message.created", "ai", "streaming"),
        ("message.completed", "ai", "complete"),  # the tool call
        ("message.created", "tool", "complete"),
        ("message.created", "ai", "streaming"),  # the next round's reply
        ("message.completed", "ai", "complete"),
    ]
    deltas = listener.of_type("message.delta")
    assert {d["message_id"] for d in deltas} == {listener.events[-1]["message"]["id"]}


@pytestmark_turns
async def test_a_tool_that_takes_too_long_is_a_stored_timeout(llm, user, settings, slow_tool):
    settings.CONFAB_TOOL_TIMEOUT = 0.2
    agent = await Agent.objects.acreate(
        slug="slow-timeout", name="Slow", system_prompt_template="Slow.", tools=["slow_test_tool"]
    )
    conversation = await sync_to_async(create_conversation)(user=user, agent=agent)
    llm.reply_tool_calls([ToolCall("slow_test_tool", {"seconds": 5}, id="call_late")])
    llm.reply_text(["It took too long."])
    result = await wait_for_result(
        await start_turn(conversation=conversation, content="wait"), timeout=10
    )
    assert result.ai_message.status == MessageStatus.COMPLETE
    rows = await aturn_rows(conversation.pk)
    late = decode_message(rows[2].content)
    assert late.tool_call_id == "call_late" and late.status == "error"
    assert late.artifact["value"]["message"] == "The tool timed out."
