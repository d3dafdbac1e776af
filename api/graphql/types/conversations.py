"""Conversations: a strawberry-django type over the model.

Queries and mutations resolve it from the rows the selectors and services give
(owner-scoped, the agent joined, `last_message` attached where a page needs it).
Subscriptions resolve the same type from an event's `conversation`
(`payloads.conversation_payload`, sent as JSON through the channel layer):
`conversation_from_event` reads it back into an unsaved row, so one set of resolvers
serves both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
import strawberry_django
from django.utils.dateparse import parse_datetime
from strawberry.scalars import JSON
from strawberry.types import Info

from api.graphql.types.agents import Agent
from api.graphql.types.messages import Message
from conversations import models
from conversations.llm.providers import conversation_model_name
from core.errors import NotFound

# "Not looked up yet" (as opposed to None: looked up, there is none).
NOT_LOADED: Any = object()
# The agent slug of a row read from an event (its agent row is not loaded).
EVENT_AGENT_SLUG = "event_agent_slug"


def conversation_from_event(payload: dict[str, Any]) -> models.Conversation:
    """An event's conversation as an unsaved row (never saved: only read by the type).
    `model` is the payload's, the one its turns use, so no agent is needed for it."""
    row = models.Conversation(
        id=payload["id"],
        title=payload["title"],
        context=payload["context"],
        model=payload.get("model", ""),
        temperature=payload.get("temperature"),
        archived_at=_timestamp(payload["archived_at"]),
        last_message_at=_timestamp(payload["last_message_at"]),
        message_count=payload["message_count"],
        active_turn_id=payload["active_turn_id"],
        project_id=payload["project"],
        pinned=payload["pinned"],
        active_leaf_id=payload["active_leaf_id"],
        created_at=_timestamp(payload["created_at"]),
        updated_at=_timestamp(payload["updated_at"]),
    )
    setattr(row, EVENT_AGENT_SLUG, payload["agent"])
    return row


def _timestamp(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def _model(root: strawberry.Parent[models.Conversation]) -> str:
    return conversation_model_name(root)


def _archived(root: strawberry.Parent[models.Conversation]) -> bool:
    return root.archived_at is not None


@strawberry_django.type(
    models.Conversation, description="A chat thread between the user and an agent."
)
class Conversation:
    id: strawberry.ID
    title: str
    context: JSON = strawberry_django.field(description="Values of the agent's template variables.")
    model: str = strawberry.field(
        resolver=_model,
        description="The model its turns use: its own choice (updateConversation), else the "
        "agent's.",
    )
    temperature: float | None = strawberry_django.field(
        description="Its own choice; null: the agent's (not shown)."
    )
    archived: bool = strawberry.field(resolver=_archived)
    archived_at: datetime | None
    last_message_at: datetime | None
    message_count: int
    active_turn_id: strawberry.ID | None = strawberry_django.field(
        description="The running turn, if any: sendMessage/regenerate answer TURN_IN_PROGRESS."
    )
    project_id: strawberry.ID | None = strawberry_django.field(
        description="The project it is in, if any."
    )
    pinned: bool = strawberry_django.field(description="Pinned conversations are listed first.")
    active_leaf_id: strawberry.ID | None = strawberry_django.field(
        description="The last message of the active branch (what `messages` pages show); "
        "null while there is no message."
    )
    created_at: datetime
    updated_at: datetime

    @strawberry.field
    async def agent(self, root: strawberry.Parent[models.Conversation], info: Info) -> Agent:
        if models.Conversation.agent.is_cached(root):
            row = root.agent
        else:  # a conversation read from an event
            row = await info.context.loaders.agent.load(getattr(root, EVENT_AGENT_SLUG))
        if row is None:  # the agent row is PROTECTed; only a race with its deletion
            raise NotFound("Agent not found.")
        return Agent.from_model(row)

    @strawberry.field(description="The newest message of the active branch, if any.")
    async def last_message(
        self, root: strawberry.Parent[models.Conversation], info: Info
    ) -> Message | None:
        # Attached by the selectors for a page (`attach_last_messages`), else loaded.
        row = getattr(root, "last_message", NOT_LOADED)
        if row is NOT_LOADED:
            row = await info.context.loaders.last_message.load(root.pk)
        return Message.from_optional(row)
