"""Chat model providers: each through its maintained LangChain package, the demo model
offline.

Which provider serves a model is the registry's (conversations.llm.registry); base URLs
and keys come from the environment (README's configuration table). Every client gets
the same timeout and retry settings, so a provider's failure is classified the same way
(conversations.turns.failures).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from conversations.llm.demo import DEMO_MODEL_NAME, DemoChatModel
from conversations.llm.registry import Provider

DEFAULT_OPENAI_MODEL = "gpt-4o"

# One pooled HTTP client per event loop. langchain-openai's default async client is
# process-wide, so a keep-alive connection opened on one loop would later be reused or
# closed on another and fail with "Event loop is closed" (a loop per test, per
# `asyncio.run` in a command, per `async_to_sync` call without an outer loop).
_http_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, openai.DefaultAsyncHttpxClient
] = weakref.WeakKeyDictionary()
# The same for Anthropic: langchain-anthropic caches one async client per base URL.
_anthropic_http_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, anthropic.DefaultAsyncHttpxClient
] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ModelSpec:
    """Which model a turn runs with (from the agent, overridable by a consumer).

    `provider` is the registry's (blank: OpenAI, as before the registry);
    `max_output_tokens` bounds the reply (None: the provider's default).
    """

    model: str
    temperature: float
    provider: str = ""
    max_output_tokens: int | None = None


def resolve_model_name(agent_model: str) -> str:
    """CONFAB_LLM_MODEL (a deployment-wide override), else the agent's model, else gpt-4o."""
    if settings.CONFAB_LLM_PROVIDER == "demo":
        return DEMO_MODEL_NAME
    return settings.CONFAB_LLM_MODEL or agent_model or DEFAULT_OPENAI_MODEL


def conversation_model_name(conversation: Any) -> str:
    """The model a conversation's turns run with (what its payload shows too): its own
    choice, else its agent's (`resolve_model_name`); the demo model in demo mode."""
    if settings.CONFAB_LLM_PROVIDER == "demo":
        return DEMO_MODEL_NAME
    if conversation.model:
        return conversation.model
    return resolve_model_name(conversation.agent.model if conversation.agent_id else "")


def _http_client_for_running_loop() -> openai.DefaultAsyncHttpxClient | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None  # built outside a loop: langchain-openai's default client serves it
    client = _http_clients.get(loop)
    if client is None:
        client = _http_clients[loop] = openai.DefaultAsyncHttpxClient()
    return client


def _anthropic_http_client() -> anthropic.DefaultAsyncHttpxClient | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    client = _anthropic_http_clients.get(loop)
    if client is None:
        client = _anthropic_http_clients[loop] = anthropic.DefaultAsyncHttpxClient()
    return client


def get_chat_model(spec: ModelSpec) -> BaseChatModel:
    """A streaming chat model for `spec` from its provider.

    Its async HTTP client is shared by every turn on the calling event loop (connection
    reuse) and never crosses loops.
    """
    provider = spec.provider or Provider.OPENAI
    if settings.CONFAB_LLM_PROVIDER == "demo" or provider == Provider.DEMO:
        return DemoChatModel()
    if provider == Provider.ANTHROPIC:
        return _anthropic(spec)
    if provider == Provider.OLLAMA:
        return _ollama(spec)
    if provider == Provider.GOOGLE:
        return _google(spec)
    compatible = provider == Provider.OPENAI_COMPATIBLE
    return ChatOpenAI(
        model=spec.model,
        temperature=spec.temperature,
        max_completion_tokens=spec.max_output_tokens,
        api_key=(settings.OPENAI_COMPATIBLE_API_KEY if compatible else settings.OPENAI_API_KEY)
        or "not-needed",
        base_url=(settings.OPENAI_COMPATIBLE_BASE_URL if compatible else settings.OPENAI_BASE_URL)
        or None,
        # With a custom base URL, ChatOpenAI does not ask a stream for its usage (the
        # final chunk with `choices: []`) unless told to.
        stream_usage=True,
        timeout=settings.CONFAB_LLM_TIMEOUT,
        max_retries=settings.CONFAB_LLM_MAX_RETRIES,
        http_async_client=_http_client_for_running_loop(),
    )


def _anthropic(spec: ModelSpec) -> BaseChatModel:
    from langchain_anthropic import ChatAnthropic

    model = ChatAnthropic(
        model=spec.model,
        temperature=spec.temperature,
        # The Messages API requires max_tokens.
        max_tokens=spec.max_output_tokens or 4096,
        api_key=settings.ANTHROPIC_API_KEY or "not-needed",
        base_url=settings.ANTHROPIC_BASE_URL or None,
        timeout=settings.CONFAB_LLM_TIMEOUT,
        max_retries=settings.CONFAB_LLM_MAX_RETRIES,
        stream_usage=True,
    )
    http_client = _anthropic_http_client()
    if http_client is not None:
        # Pre-fill the model's cached async client with one on this loop's pool.
        model.__dict__["_async_client"] = anthropic.AsyncAnthropic(
            **model._client_params, http_client=http_client
        )
    return model


def _ollama(spec: ModelSpec) -> BaseChatModel:
    from langchain_ollama import ChatOllama

    return ChatOllama(
        model=spec.model,
        temperature=spec.temperature,
        num_predict=spec.max_output_tokens,
        base_url=settings.OLLAMA_BASE_URL or None,
        client_kwargs={"timeout": settings.CONFAB_LLM_TIMEOUT},
    )


GOOGLE_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


def _google(spec: ModelSpec) -> BaseChatModel:
    model = _gemini_class()(
        model=spec.model,
        temperature=spec.temperature,
        max_output_tokens=spec.max_output_tokens,
        google_api_key=settings.GOOGLE_API_KEY or "not-needed",
        base_url=settings.GOOGLE_BASE_URL or GOOGLE_DEFAULT_BASE_URL,
        transport="rest",
        timeout=settings.CONFAB_LLM_TIMEOUT,
        max_retries=settings.CONFAB_LLM_MAX_RETRIES,
    )
    # Google's generated client retries 503s on its own (for minutes, under its default
    # deadline) whatever max_retries says: retries are LangChain's (CONFAB_LLM_MAX_RETRIES).
    client = model.client
    if not getattr(client.stream_generate_content, "confab_no_retry", False):
        stream = functools.partial(client.stream_generate_content, retry=None)
        stream.confab_no_retry = True  # type: ignore[attr-defined]
        client.stream_generate_content = stream
    return model


@functools.cache
def _gemini_class() -> type[BaseChatModel]:
    """ChatGoogleGenerativeAI streaming over its REST transport (streamGenerateContent),
    in the event loop's executor.

    langchain-google-genai 3.2 (the newest that installs with the pinned langchain-core
    and tenacity) builds a *sync* REST client as its "async" client whenever a base URL
    is set, and its `astream` then fails (`ResponseIterator can't be used in 'await'`);
    without a base URL it would use gRPC, which no local fake can speak. With no async
    client, LangChain's own `astream` runs the model's REST `stream` in a thread: one
    code path in production and in the tests (tests/support/fake_gemini.py).
    """
    from langchain_google_genai import ChatGoogleGenerativeAI

    class RestChatGoogleGenerativeAI(ChatGoogleGenerativeAI):
        @property
        def async_client(self) -> None:  # type: ignore[override]
            return None

    return RestChatGoogleGenerativeAI
