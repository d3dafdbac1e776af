"""Conversations, built from `payloads.conversation_payload`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from api.graphql.types.agents import Agent
from api.graphql.types.messages import Message, optional_id, parse_timestamp
from conversations import models
from conversations.payloads import conversation_payload
from core.errors import NotFound

# "Not looked up yet" (as opposed to None: looked up, there is none).
NOT_LOADED: Any = object()


@strawberry.type(description="A chat thread between the user and an agent.")
class Conversation:
    id: strawberry.ID
    title: str
    context: JSON = strawberry.field(description="Values of the agent's template variables.")
    model: str = strawberry.field(
        description="The model its turns use: its own choice (updateConversation), else the "
        "agent's."
    )
    temperature: float | None = strawberry.field(
        description="Its own choice; null: the agent's (not shown)."
    )
    archived: bool
    archived_at: datetime | None
    last_message_at: datetime | None
    message_count: int
    active_turn_id: strawberry.ID | None = strawberry.field(
        description="The running turn, if any: sendMessage/regenerate answer TURN_IN_PROGRESS."
    )
    project_id: strawberry.ID | None = strawberry.field(description="The project it is in, if any.")
    pinned: bool = strawberry.field(description="Pinned conversations are listed first.")
    active_leaf_id: strawberry.ID | None = strawberry.field(
        description="The last message of the active branch (what `messages` pages show); "
        "null while there is no message."
    )
    created_at: datetime
    updated_at: datetime

    agent_slug: strawberry.Private[str]
    agent_row: strawberry.Private[models.Agent | None] = None
    last_message_row: strawberry.Private[Any] = NOT_LOADED

    @strawberry.field
    async def agent(self, info: Info) -> Agent:
        row = self.agent_row or await info.context.loaders.agent.load(self.agent_slug)
        if row is None:  # the agent row is PROTECTed; only a race with its deletion
            raise NotFound("Agent not found.")
        return Agent.from_model(row)

    @strawberry.field(description="The newest message of the active branch, if any.")
    async def last_message(self, info: Info) -> Message | None:
        row = self.last_message_row
        if row is NOT_LOADED:
            row = await info.context.loaders.last_message.load(int(self.id))
        return Message.from_optional(row)

    @classmethod
    def from_payload(
        cls,
        payload: dict[str, Any],
        *,
        agent: models.Agent | None = None,
        last_message: Any = NOT_LOADED,
    ) -> Conversation:
        """From the `conversation` of an event (or `payloads.conversation_payload`)."""
        return cls(
            id=strawberry.ID(str(payload["id"])),
            title=payload["title"],
            context=payload["context"],
            model=payload.get("model", ""),
            temperature=payload.get("temperature"),
            archived=payload["archived"],
            archived_at=parse_timestamp(payload["archived_at"]),
            last_message_at=parse_timestamp(payload["last_message_at"]),
            message_count=payload["message_count"],
            active_turn_id=optional_id(payload["active_turn_id"]),
            project_id=optional_id(payload["project"]),
            pinned=payload["pinned"],
            active_leaf_id=optional_id(payload.get("active_leaf_id")),
            created_at=parse_timestamp(payload["created_at"]),  # type: ignore[arg-type]
            updated_at=parse_timestamp(payload["updated_at"]),  # type: ignore[arg-type]
            agent_slug=payload["agent"],
            agent_row=agent,
            last_message_row=last_message,
        )

    @classmethod
    def from_model(cls, conversation: models.Conversation) -> Conversation:
        """From a row whose agent is loaded (selectors join it); uses `.last_message`
        when a selector attached it."""
        return cls.from_payload(
            conversation_payload(conversation),
            agent=conversation.agent,
            last_message=getattr(conversation, "last_message", NOT_LOADED),
        )
