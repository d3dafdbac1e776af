"""DataLoaders for fields that payload-built objects must look up (no N+1).

A conversation built from an event payload knows only its agent's slug and
not its last message; these loaders fetch them for every object of one
execution in one batch. Caching is off: a websocket context lives as long as
its connection, and a cached last message would go stale.
"""

from __future__ import annotations

from functools import cached_property

from channels.db import database_sync_to_async
from strawberry.dataloader import DataLoader

from conversations import selectors
from conversations.models import Agent, ConversationMessage


async def load_agents(slugs: list[str]) -> list[Agent | None]:
    agents = await database_sync_to_async(selectors.agents_by_slug)(slugs=list(slugs))
    return [agents.get(slug) for slug in slugs]


async def load_last_messages(conversation_ids: list[int]) -> list[ConversationMessage | None]:
    messages = await database_sync_to_async(selectors.last_messages)(
        conversation_ids=list(conversation_ids)
    )
    return [messages.get(pk) for pk in conversation_ids]


class Loaders:
    """The loaders of one context, created on first use (inside the running loop)."""

    @cached_property
    def agent(self) -> DataLoader[str, Agent | None]:
        return DataLoader(load_fn=load_agents, cache=False)

    @cached_property
    def last_message(self) -> DataLoader[int, ConversationMessage | None]:
        return DataLoader(load_fn=load_last_messages, cache=False)
