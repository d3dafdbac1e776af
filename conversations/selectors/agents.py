"""Reads of agents."""

from __future__ import annotations

from django.db.models import QuerySet

from conversations.llm.registry import LanguageModel, active_models
from conversations.models import Agent
from core.errors import NotFound


def list_models() -> QuerySet[LanguageModel]:
    """The registry's active models (what a model picker offers)."""
    return active_models()


def list_agents() -> QuerySet[Agent]:
    return Agent.objects.filter(is_active=True).order_by("name", "id")


def agents_by_slug(*, slugs: list[str]) -> dict[str, Agent]:
    """Agents by slug in one query, inactive ones included: a conversation keeps its agent."""
    if not slugs:
        return {}
    return {agent.slug: agent for agent in Agent.objects.filter(slug__in=slugs)}


def get_agent(*, slug: str) -> Agent:
    agent = list_agents().filter(slug=slug).first()
    if agent is None:
        raise NotFound("Agent not found.")
    return agent
