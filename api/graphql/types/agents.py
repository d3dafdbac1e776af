"""Agents: the personas a conversation can be created with (prompts are never exposed)."""

from __future__ import annotations

import strawberry

from conversations.models import Agent as AgentModel
from conversations.services.conversations import agent_variables


@strawberry.type(description="A template variable of an agent, set in a conversation's context.")
class ContextVariable:
    name: str
    default: str | None = strawberry.field(description="Used when the context omits it.")
    description: str | None


@strawberry.type(description="A persona: model, tools and the context variables it needs.")
class Agent:
    slug: str
    name: str
    description: str
    model: str = strawberry.field(description="Model name; empty means the server default.")
    tools: list[str]
    context_variables: list[ContextVariable] = strawberry.field(
        description="Every variable the agent's templates use; required ones have no default."
    )

    @classmethod
    def from_model(cls, agent: AgentModel) -> Agent:
        schema = agent.context_schema if isinstance(agent.context_schema, dict) else {}
        variables = []
        for name, default in agent_variables(agent).items():
            spec = schema.get(name)
            description = spec.get("description") if isinstance(spec, dict) else None
            variables.append(
                ContextVariable(
                    name=name,
                    default=None if default is None else str(default),
                    description=description,
                )
            )
        return cls(
            slug=agent.slug,
            name=agent.name,
            description=agent.description,
            model=agent.model,
            tools=[str(tool) for tool in agent.tools or []],
            context_variables=variables,
        )
