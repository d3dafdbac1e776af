"""Agents: the personas a conversation can be created with (prompts are never exposed)."""

from __future__ import annotations

from typing import Any

import strawberry

from conversations.models import Agent as AgentModel
from conversations.payloads import agent_payload


@strawberry.type(description="A template variable of an agent, set in a conversation's context.")
class ContextVariable:
    name: str
    default: str | None = strawberry.field(description="Used when the context omits it.")
    description: str
    required: bool = strawberry.field(description="True when it has no default.")


@strawberry.type(description="A persona: model, tools and the context variables it needs.")
class Agent:
    slug: str
    name: str
    description: str
    model: str = strawberry.field(description="The model its turns use.")
    allowed_models: list[str] = strawberry.field(
        description="Models a conversation may switch to (updateConversation); empty: any "
        "of `models`."
    )
    tools: list[str]
    context_variables: list[ContextVariable] = strawberry.field(
        description="Every variable the agent's templates use; required ones have no default."
    )

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Agent:
        """From `payloads.agent_payload` (the agent shape of every surface)."""
        return cls(
            slug=payload["slug"],
            name=payload["name"],
            description=payload["description"],
            model=payload["model"],
            allowed_models=payload["allowed_models"],
            tools=payload["tools"],
            context_variables=[ContextVariable(**v) for v in payload["context_variables"]],
        )

    @classmethod
    def from_model(cls, agent: AgentModel) -> Agent:
        return cls.from_payload(agent_payload(agent))


@strawberry.type(description="A model of the registry: provider, limits, abilities and prices.")
class LanguageModel:
    name: str = strawberry.field(description="Pass as `model` to updateConversation.")
    label: str
    provider: str = strawberry.field(
        description="openai, openai_compatible, anthropic, google, ollama or demo."
    )
    context_window: int
    max_output_tokens: int
    supports_images: bool
    supports_tools: bool
    input_price_per_million: float | None = strawberry.field(description="USD per 1M tokens.")
    output_price_per_million: float | None = strawberry.field(description="USD per 1M tokens.")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> LanguageModel:
        """From `registry.model_payload` (the model shape of every surface)."""
        return cls(**payload)
