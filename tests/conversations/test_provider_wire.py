"""Each provider end to end: Confab's turn engine through the provider's real LangChain
client against a local fake speaking the provider's real streaming wire format
(tests/support/fake_*.py): streamed deltas, usage stored, a tool-call round trip, image
input, and every failure mapped to the same codes as OpenAI's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from langchain_core.messages import HumanMessage

from conversations import services
from conversations.events import conversation_group
from conversations.llm.registry import LanguageModel
from conversations.models import Agent, ConversationMessage, MessageRole
from conversations.turns import start_turn, wait_for_result
from conversations.usage.models import UsageRecord
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_gemini import FakeGemini
from tests.support.fake_ollama import FakeOllama
from tests.support.fakeprovider import Fail, FakeProvider, Recorded, Reply
from tests.support.turns import GroupListener, turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/"
    "PchI7wAAAABJRU5ErkJggg=="
)
IMAGE_BLOCK = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}


@dataclass
class Wire:
    """A provider under test: its fake, its settings, and how to read what it was sent."""

    provider: str
    model: str
    fake: FakeProvider
    path: str
    image_sent: Callable[[Recorded], bool]
    tool_result_sent: Callable[[Recorded, str], bool]
    max_tokens_sent: Callable[[Recorded], Any]
    # Frames to send before cutting a stream so that some, not all, of its text arrived.
    cut_after: int


def _anthropic_image(request: Recorded) -> bool:
    blocks = request.body["messages"][0]["content"]
    return any(block.get("type") == "image" and block["source"]["data"] == PNG for block in blocks)


def _anthropic_tool_result(request: Recorded, text: str) -> bool:
    last = request.body["messages"][-1]
    return any(
        block.get("type") == "tool_result" and text in str(block.get("content"))
        for block in last["content"]
    )


def _start_anthropic(settings: Any) -> Wire:
    fake = FakeAnthropic().start()
    settings.ANTHROPIC_BASE_URL = fake.url
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    return Wire(
        provider="anthropic",
        model="claude-fake-1",
        fake=fake,
        path="/v1/messages",
        image_sent=_anthropic_image,
        tool_result_sent=_anthropic_tool_result,
        max_tokens_sent=lambda request: request.body["max_tokens"],
        cut_after=5,  # message_start, ping, content_block_start, 2 text deltas
    )


def _ollama_image(request: Recorded) -> bool:
    return request.body["messages"][1].get("images") == [PNG]


def _ollama_tool_result(request: Recorded, text: str) -> bool:
    last = request.body["messages"][-1]
    return last["role"] == "tool" and text in last["content"]


def _start_ollama(settings: Any) -> Wire:
    fake = FakeOllama().start()
    settings.OLLAMA_BASE_URL = fake.url
    return Wire(
        provider="ollama",
        model="llama-fake",
        fake=fake,
        path="/api/chat",
        image_sent=_ollama_image,
        tool_result_sent=_ollama_tool_result,
        max_tokens_sent=lambda request: request.body["options"]["num_predict"],
        cut_after=2,
    )


def _gemini_image(request: Recorded) -> bool:
    parts = request.body["contents"][0]["parts"]
    return any(part.get("inlineData", {}).get("data") == PNG for part in parts)


def _gemini_tool_result(request: Recorded, text: str) -> bool:
    parts = request.body["contents"][-1]["parts"]
    return any(text in json.dumps(part.get("functionResponse", {})) for part in parts)


def _start_gemini(settings: Any) -> Wire:
    fake = FakeGemini().start()
    settings.GOOGLE_BASE_URL = fake.url
    settings.GOOGLE_API_KEY = "google-test-key"
    return Wire(
        provider="google",
        model="gemini-fake",
        fake=fake,
        path=":streamGenerateContent",
        image_sent=_gemini_image,
        tool_result_sent=_gemini_tool_result,
        max_tokens_sent=lambda request: request.body["generationConfig"]["maxOutputTokens"],
        cut_after=2,
    )


STARTERS = {"anthropic": _start_anthropic, "ollama": _start_ollama, "google": _start_gemini}


@pytest.fixture(params=sorted(STARTERS))
def wire(request, settings) -> Iterator[Wire]:
    settings.CONFAB_LLM_PROVIDER = "auto"
    settings.CONFAB_LLM_TIMEOUT = 2.0
    settings.CONFAB_LLM_MAX_RETRIES = 0
    started = STARTERS[request.param](settings)
    try:
        yield started
    finally:
        started.fake.stop()


@pytest.fixture
def chat(wire, user):
    """A conversation (with tools) switched to the provider's model."""
    LanguageModel.objects.create(
        name=wire.model,
        provider=wire.provider,
        context_window=100_000,
        max_output_tokens=777,
        supports_images=True,
    )
    agent = Agent.objects.create(
        slug="wired",
        name="Wired",
        system_prompt_template="You are terse.",
        temperature=0.5,
        tools=["calculator"],
    )
    conversation = services.create_conversation(user=user, agent=agent)
    return services.update_conversation(conversation=conversation, model=wire.model)


async def run(conversation, content: str = "hello"):
    handle = await start_turn(conversation=conversation, content=content)
    return await wait_for_result(handle, timeout=15)


async def test_deltas_stream_and_usage_is_stored(wire, chat):
    wire.fake.enqueue(Reply(text=["Hel", "lo ", "from ", "the ", "fake"], usage=(21, 5)))
    async with GroupListener(conversation_group(chat.pk)) as listener:
        result = await run(chat)
        await listener.until_type("message.completed")
    deltas = "".join(e["delta"] for e in listener.of_type("message.delta"))
    assert deltas == result.ai_message.text == "Hello from the fake"
    assert result.ai_message.status == "complete"
    assert result.ai_message.model == wire.model
    assert result.ai_message.usage == {"input_tokens": 21, "output_tokens": 5, "total_tokens": 26}
    # The call is recorded for the usage report and quota (conversations/usage).
    recorded = [
        (r.model, r.kind, r.input_tokens, r.output_tokens, r.message_id)
        async for r in UsageRecord.objects.filter(conversation_id=chat.pk)
    ]
    assert recorded == [(wire.model, "turn", 21, 5, result.ai_message.pk)]
    (request,) = wire.fake.requests
    assert request.path.endswith(wire.path) or wire.path in request.path
    assert wire.max_tokens_sent(request) == 777


async def test_a_tool_call_round_trips(wire, chat):
    wire.fake.enqueue(
        Reply(text=[], tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}}]),
        Reply(text=["It is ", "42."]),
    )
    result = await run(chat, "what is 6*7?")
    assert result.ai_message.text == "It is 42."
    rows = [row async for row in ConversationMessage.objects.filter(conversation=chat)]
    assert [row.role for row in rows] == ["human", "ai", "tool", "ai"]
    assert rows[1].content["_value"]["tool_calls"][0]["name"] == "calculator"
    assert "42" in rows[2].text
    assert len(wire.fake.requests) == 2
    assert wire.tool_result_sent(wire.fake.requests[1], "42")


async def test_an_image_reaches_the_provider_as_its_image_input(wire, chat):
    await sync_to_async(services.append_message)(
        conversation=chat,
        message=HumanMessage(content=[{"type": "text", "text": "What is this?"}, IMAGE_BLOCK]),
    )
    wire.fake.enqueue(Reply(text=["A pixel."]))
    result = await start_turn(conversation=chat, regenerate=True)
    result = await wait_for_result(result, timeout=15)
    assert result.ai_message.text == "A pixel."
    assert wire.image_sent(wire.fake.requests[0])


@pytest.mark.parametrize(
    ("step", "code"),
    [
        (Fail(429), "provider_rate_limited"),
        (Fail(500), "provider_error"),
        (Fail(503), "provider_error"),
        (Fail(400), "provider_rejected"),
        (Fail(401), "provider_rejected"),
        (Reply(initial_delay=5), "provider_timeout"),
        (Reply(text=["partial ", "text ", "then ", "cut"], die_after=-1), None),
    ],
    ids=["429", "500", "503", "400", "401", "timeout", "cut"],
)
async def test_failures_map_to_the_same_codes(wire, chat, step, code):
    if isinstance(step, Reply) and step.die_after == -1:
        step = replace(step, die_after=wire.cut_after)
    # A client may re-send on its own (Google's auth layer re-sends a 401 twice): every
    # attempt fails the same way.
    wire.fake.enqueue(*[step] * (3 if isinstance(step, Fail) else 1))
    result = await run(chat)
    assert len(wire.fake.requests) <= 3  # CONFAB_LLM_MAX_RETRIES=0: no retry loop
    message = result.ai_message
    assert message.status == "failed"
    if code is None:  # a cut stream: interrupted, partial text kept
        assert message.error["code"] == "provider_stream_interrupted", message.error
        assert message.text == "partial text ", message.text
    else:
        assert message.error["code"] == code, message.error
    # The human message is kept.
    assert await ConversationMessage.objects.filter(
        conversation=chat, role=MessageRole.HUMAN
    ).aexists()


# --- any OpenAI-compatible server, beside OpenAI itself ----------------------------------


async def test_an_openai_compatible_server_runs_its_registry_models(settings, user):
    from tests.support.fakeopenai import FakeOpenAI

    settings.CONFAB_LLM_PROVIDER = "auto"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # OpenAI's own: must not be called
    with FakeOpenAI() as compatible:
        settings.OPENAI_COMPATIBLE_BASE_URL = compatible.base_url
        settings.OPENAI_COMPATIBLE_API_KEY = "vllm-key"
        await LanguageModel.objects.acreate(
            name="qwen-local",
            provider="openai_compatible",
            context_window=32_000,
            max_output_tokens=300,
        )
        agent = await Agent.objects.acreate(slug="local", name="Local", system_prompt_template="s")
        conversation = await sync_to_async(services.create_conversation)(user=user, agent=agent)
        await sync_to_async(services.update_conversation)(
            conversation=conversation, model="qwen-local"
        )
        compatible.reply_text(["Lo", "cal."], usage=(8, 2))
        result = await run(conversation)
    assert result.ai_message.text == "Local."
    assert result.ai_message.usage["total_tokens"] == 10
    (request,) = compatible.requests
    assert request.headers["authorization"] == "Bearer vllm-key"
    assert request.body["model"] == "qwen-local"
    assert request.body["max_completion_tokens"] == 300
