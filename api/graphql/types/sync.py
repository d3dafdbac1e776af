"""The changes feed: what changed since a cursor (the REST `GET /api/v1/sync/` feed)."""

from __future__ import annotations

import strawberry

from api.graphql.types.conversations import Conversation
from api.graphql.types.messages import Message, optional_id
from conversations import inputs
from conversations.payloads import change_payload
from conversations.sync.selectors import ChangePage, FeedChange


@strawberry.type(
    description=(
        "One change: `type` is conversation.upserted (`conversation`), conversation.deleted "
        "or conversation.cleared (`id`), message.upserted (`message`) or message.deleted "
        "(`id`, `conversationId`)."
    )
)
class Change:
    type: str
    id: strawberry.ID | None = strawberry.field(description="The id of what is gone.")
    conversation_id: strawberry.ID | None = strawberry.field(
        description="The conversation of a deleted message."
    )
    conversation: Conversation | None = strawberry.field(description="Its state now.")
    message: Message | None = strawberry.field(description="Its state now.")

    @classmethod
    def from_change(cls, change: FeedChange) -> Change:
        """From a change of the feed: its conversation row as it is now, the rest as
        `payloads.change_payload` shapes it."""
        payload = change_payload(change)
        message = payload.get("message")
        return cls(
            type=payload["type"],
            id=optional_id(payload.get("id")),
            conversation_id=optional_id(payload.get("conversation_id")),
            conversation=change.conversation if message is None else None,
            message=Message.from_payload(message) if message else None,
        )


@strawberry.type(description="Changes in the order they happened, and where to continue.")
class ChangeFeed:
    changes: list[Change]
    cursor: str = strawberry.field(description="Pass as `after` next time (opaque; store it).")
    has_more: bool = strawberry.field(description="More changes wait: ask again with `cursor`.")

    @classmethod
    def from_page(cls, page: ChangePage) -> ChangeFeed:
        return cls(
            changes=[Change.from_change(change) for change in page.changes],
            cursor=inputs.encode_sync_cursor(page.cursor),
            has_more=page.has_more,
        )
