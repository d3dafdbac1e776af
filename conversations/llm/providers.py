"""Chat model providers: `ChatOpenAI` for real turns, the demo model offline."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

import openai
from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from conversations.llm.demo import DEMO_MODEL_NAME, DemoChatModel

DEFAULT_OPENAI_MODEL = "gpt-4o"

# One pooled HTTP client per event loop. langchain-openai's default async client is
# process-wide, so a keep-alive connection opened on one loop would later be reused or
# closed on another and fail with "Event loop is closed" (a loop per test, per
# `asyncio.run` in a command, per `async_to_sync` call without an outer loop).
_http_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, openai.DefaultAsyncHttpxClient
] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ModelSpec:
    """Which model a turn runs with (from the agent, overridable by a consumer)."""

    model: str
    temperature: float


def resolve_model_name(agent_model: str) -> str:
    """CONFAB_LLM_MODEL (a deployment-wide override), else the agent's model, else gpt-4o."""
    if settings.CONFAB_LLM_PROVIDER == "demo":
        return DEMO_MODEL_NAME
    return settings.CONFAB_LLM_MODEL or agent_model or DEFAULT_OPENAI_MODEL


def _http_client_for_running_loop() -> openai.DefaultAsyncHttpxClient | None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None  # built outside a loop: langchain-openai's default client serves it
    client = _http_clients.get(loop)
    if client is None:
        client = _http_clients[loop] = openai.DefaultAsyncHttpxClient()
    return client


def get_chat_model(spec: ModelSpec) -> BaseChatModel:
    """A streaming chat model for `spec` from the configured provider.

    Its async HTTP client is shared by every turn on the calling event loop (connection
    reuse) and never crosses loops.
    """
    if settings.CONFAB_LLM_PROVIDER == "demo":
        return DemoChatModel()
    return ChatOpenAI(
        model=spec.model,
        temperature=spec.temperature,
        api_key=settings.OPENAI_API_KEY or "not-needed",
        base_url=settings.OPENAI_BASE_URL or None,
        # With a custom base URL, ChatOpenAI does not ask a stream for its usage (the
        # final chunk with `choices: []`) unless told to.
        stream_usage=True,
        timeout=settings.CONFAB_LLM_TIMEOUT,
        max_retries=settings.CONFAB_LLM_MAX_RETRIES,
        http_async_client=_http_client_for_running_loop(),
    )
