"""Providers and prompts: what the real ChatOpenAI client sends, and the offline demo model."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from langchain_openai import ChatOpenAI

from conversations.llm.demo import DEMO_MODEL_NAME, DemoChatModel
from conversations.llm.prompts import TemplateError, render_template, template_variables
from conversations.llm.providers import ModelSpec, get_chat_model
from conversations.models import Agent, Conversation, ConversationMessage, MessageStatus
from conversations.seed_agents import LANGUAGE_TUTOR
from conversations.services import create_conversation
from conversations.turns import start_greeting, start_turn, wait_for_result
from conversations.turns.config import build_turn_config
from tests.support.turns import GroupListener, turn_cleanup  # noqa: F401

turns = pytest.mark.django_db(transaction=True)


# --- ChatOpenAI ------------------------------------------------------------------


def test_chat_openai_is_configured_from_settings_and_the_spec(settings):
    settings.CONFAB_LLM_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = "http://llm.internal:8000/v1"
    settings.OPENAI_API_KEY = "sk-settings"
    settings.CONFAB_LLM_TIMEOUT = 12.5
    settings.CONFAB_LLM_MAX_RETRIES = 1
    model = get_chat_model(ModelSpec(model="m-1", temperature=0.25))
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "m-1" and model.temperature == 0.25
    assert model.openai_api_base == "http://llm.internal:8000/v1"
    assert model.openai_api_key.get_secret_value() == "sk-settings"
    assert model.stream_usage is True
    assert model.request_timeout == 12.5 and model.max_retries == 1


def test_each_event_loop_streams_over_its_own_connections(llm):
    # A keep-alive connection from a closed loop, reused on the next, used to fail the
    # turn with "Event loop is closed" (langchain-openai's client is process-wide).
    async def ask() -> str:
        model = get_chat_model(ModelSpec(model="m-1", temperature=0))
        return "".join([chunk.content async for chunk in model.astream("hi")])

    llm.reply_text(["one"])
    llm.reply_text(["two"])
    assert asyncio.run(ask()) == "one"
    assert asyncio.run(ask()) == "two"
    assert len(llm.requests) == 2


@turns
async def test_a_turn_sends_the_agents_model_and_temperature_with_usage_on(llm, user):
    agent = await Agent.objects.acreate(
        slug="precise",
        name="Precise",
        system_prompt_template="Be precise.",
        model="agent-model-7",
        temperature=0.7,
    )
    conversation = await sync_to_async(create_conversation)(user=user, agent=agent)
    llm.reply_text(["Sure."], usage=(9, 1))
    result = await wait_for_result(
        await start_turn(conversation=conversation, content="hi"), timeout=10
    )
    (request,) = llm.requests
    assert request.path == "/v1/chat/completions"  # base_url from settings
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "agent-model-7"
    assert request.body["temperature"] == 0.7
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert result.ai_message.usage == {"input_tokens": 9, "output_tokens": 1, "total_tokens": 10}
    assert result.ai_message.model == "agent-model-7"


@turns
async def test_a_deployment_wide_model_overrides_the_agents(llm, conversation, settings):
    settings.CONFAB_LLM_MODEL = "deployment-model"
    await wait_for_result(await start_turn(conversation=conversation, content="hi"), timeout=10)
    assert llm.requests[0].body["model"] == "deployment-model"


@turns
async def test_a_conversation_loaded_without_its_agent_still_runs(llm, conversation):
    # As a consumer subclass or another surface might load it: no select_related.
    bare = await Conversation.objects.aget(pk=conversation.pk)
    result = await wait_for_result(await start_turn(conversation=bare, content="hi"), timeout=10)
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert llm.requests[0].body["model"] == "test-model"


# --- prompts -----------------------------------------------------------------------


def test_templates_take_unicode_names_and_nothing_else():
    assert template_variables("{언어} {상황} {레벨} {언어}") == ["언어", "상황", "레벨"]
    assert render_template("말해요: {언어}!", {"언어": "중국어"}) == "말해요: 중국어!"
    for bad in ["{x.__class__}", "{x[0]}", "{0}", "{", "{x!r:>{y}}"]:
        with pytest.raises(TemplateError):
            template_variables(bad)


@turns
async def test_the_system_prompt_is_rendered_from_the_agent_and_context(llm, user, tutor):
    context = {"언어": "일본어", "상황": "기차역에서 표를 사는 상황", "레벨": "중급"}
    conversation = await sync_to_async(create_conversation)(user=user, agent=tutor, context=context)
    await wait_for_result(
        await start_turn(conversation=conversation, content="こんにちは"), timeout=10
    )
    system, human = llm.requests[0].messages
    assert system == {
        "role": "system",
        "content": LANGUAGE_TUTOR["system_prompt_template"].format(**context),
    }
    for value in context.values():
        assert value in system["content"]
    assert "{" not in system["content"]
    assert human == {"role": "user", "content": "こんにちは"}
    assert llm.requests[0].body["temperature"] == 1.0


@turns
async def test_the_tutor_defaults_fill_the_prompt(llm, tutor_conversation):
    await wait_for_result(
        await start_turn(conversation=tutor_conversation, content="你好"), timeout=10
    )
    system = llm.requests[0].messages[0]["content"]
    assert "중국어" in system and "스타벅스에서 커피를 주문하는 상황" in system and "초급" in system


@turns
async def test_an_empty_conversation_starts_with_the_first_user_message(llm, tutor_conversation):
    llm.reply_text(["您好", "欢迎光临。"])
    handle = await start_greeting(conversation=tutor_conversation)
    assert handle is not None
    result = await wait_for_result(handle, timeout=10)
    first = LANGUAGE_TUTOR["first_user_message_template"]
    assert llm.requests[0].messages[1:] == [{"role": "user", "content": first}]
    assert result.human_message.text == first
    assert result.ai_message.text == "您好欢迎光临。"
    # Not again once the conversation has messages.
    conversation = await Conversation.objects.select_related("agent").aget(pk=tutor_conversation.pk)
    assert await start_greeting(conversation=conversation) is None
    assert await start_greeting(conversation=tutor_conversation) is None  # a stale object too
    assert len(llm.requests) == 1


@turns
async def test_no_greeting_without_a_first_user_message_template(llm, conversation):
    assert await start_greeting(conversation=conversation) is None
    assert llm.requests == []


def test_build_turn_config_takes_overrides(db, tutor_conversation):
    config = build_turn_config(
        tutor_conversation,
        model="other",
        temperature=0.0,
        system_prompt_template="Speak {언어}.",
        context={"언어": "스페인어"},
    )
    assert (config.model, config.temperature) == ("other", 0.0)
    assert render_template(config.system_prompt_template, config.context) == "Speak 스페인어."
    assert config.first_user_message_template == LANGUAGE_TUTOR["first_user_message_template"]


# --- the offline demo model -----------------------------------------------------------


async def run_demo_turn(conversation, content):
    handle = await start_turn(conversation=conversation, content=content)
    return await wait_for_result(handle, timeout=20)


@turns
async def test_the_demo_model_streams_a_labelled_deterministic_reply(conversation, settings):
    settings.CONFAB_LLM_PROVIDER = "demo"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: no network used
    from conversations.events import conversation_group

    async with GroupListener(conversation_group(conversation.pk)) as listener:
        first = await run_demo_turn(conversation, "hello demo")
        await listener.until_type("message.completed", timeout=10)
    ai = first.ai_message
    assert ai.status == MessageStatus.COMPLETE
    assert ai.text.startswith("[offline demo model]")
    assert ai.text.endswith("You said: hello demo")
    assert ai.model == DEMO_MODEL_NAME
    assert ai.usage["output_tokens"] == len(ai.text.split())
    assert len(listener.of_type("message.delta")) > 1  # streamed, not one block
    second = await run_demo_turn(conversation, "hello demo")
    assert second.ai_message.text == ai.text  # deterministic
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 4


def test_the_demo_model_ignores_tools_and_answers_without_network():
    model = DemoChatModel(word_delay=0)
    assert model.bind_tools([object()]) is model
    reply = model.invoke("What is 2+2?")
    assert reply.content.startswith("[offline demo model]")
    assert reply.response_metadata["model_name"] == DEMO_MODEL_NAME
