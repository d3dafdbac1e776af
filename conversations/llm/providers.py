"""Chat model providers: `ChatOpenAI` for real turns, the demo model offline."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI

from conversations.llm.demo import DEMO_MODEL_NAME, DemoChatModel

DEFAULT_OPENAI_MODEL = "gpt-4o"


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


def get_chat_model(spec: ModelSpec) -> BaseChatModel:
    """A streaming chat model for `spec` from the configured provider."""
    if settings.CONFAB_LLM_PROVIDER == "demo":
        return DemoChatModel()
    return ChatOpenAI(
        model=spec.model,
        temperature=spec.temperature,
        api_key=settings.OPENAI_API_KEY or "not-needed",
        base_url=settings.OPENAI_BASE_URL or None,
        # Custom base URLs do not request usage unless asked (STACK.md #7).
        stream_usage=True,
        timeout=settings.CONFAB_LLM_TIMEOUT,
        max_retries=settings.CONFAB_LLM_MAX_RETRIES,
    )
