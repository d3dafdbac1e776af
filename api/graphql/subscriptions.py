"""Live events over graphql-transport-ws (and legacy graphql-ws), from the Channels layer.

Each subscription checks what it may see first: the resolver is a coroutine that
raises NOT_FOUND (an `error` message for that operation) before it returns the
event stream. The stream joins the Channels group with strawberry's
`listen_to_channel`, which leaves the group when the client completes the
operation or disconnects.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql.context import current_user
from api.graphql.types.events import (
    ConversationChange,
    ConversationEvent,
    ConversationUpdated,
    to_conversation_change,
    to_conversation_event,
)
from conversations import selectors
from conversations.events import (
    CHANNEL_MESSAGE_TYPE,
    EventType,
    conversation_group,
    user_group,
)
from conversations.resume import Position, StreamTracker
from core.errors import ApplicationError


class WebsocketRequired(ApplicationError):
    code = "WEBSOCKET_REQUIRED"
    type = "invalid_request"
    default_detail = "Subscriptions are served over websockets (graphql-transport-ws)."


def _consumer(info: Info) -> Any:
    ws = info.context.ws
    if ws is None:
        raise WebsocketRequired()
    return ws


async def _conversation_stream(
    ws: Any, user: Any, conversation_id: int, after: Position | None = None
) -> AsyncGenerator[ConversationEvent, None]:
    groups = [conversation_group(conversation_id)]
    # With `after`: resume there (conversations.resume), as the SSE event stream does.
    tracker = StreamTracker(after) if after is not None else None
    async with ws.listen_to_channel(CHANNEL_MESSAGE_TYPE, groups=groups) as listener:
        # Now listening: a snapshot taken after joining is a sync point. Anything
        # newer than it arrives as an event.
        conversation = await selectors.aget_conversation(user=user, conversation_id=conversation_id)
        # Followed live while the operation runs: no push for what is watched here
        # (the socket's lifecycle lets go of it when the socket ends).
        await ws.follow_conversation(conversation_id)
        try:
            yield ConversationUpdated(conversation=conversation)
            if tracker is not None:
                async for stored in tracker.resume(conversation_id):
                    converted = to_conversation_event(stored)
                    if converted is not None:
                        yield converted
            async for message in listener:
                event = message.get("event")
                if not isinstance(event, dict):
                    continue
                if tracker is not None:
                    event = await tracker.live(event)
                    if event is None:
                        continue
                converted = to_conversation_event(event)
                if converted is not None:
                    yield converted
                if event.get("type") == EventType.CONVERSATION_DELETED:
                    return
        finally:
            await ws.unfollow_conversation(conversation_id)


async def _user_stream(ws: Any, user: Any) -> AsyncGenerator[ConversationChange, None]:
    async with ws.listen_to_channel(CHANNEL_MESSAGE_TYPE, groups=[user_group(user.pk)]) as listener:
        async for message in listener:
            event = message.get("event")
            converted = to_conversation_change(event) if isinstance(event, dict) else None
            if converted is not None:
                yield converted


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "Everything that happens in one of the user's conversations. The first event is a "
            "ConversationUpdated snapshot, sent once the server listens: load history after "
            "it. Ends after ConversationDeleted. NOT_FOUND for anyone else's conversation. "
            "With `after` (a position, as REST SSE event ids: `<messageId>` when every "
            "message up to it is held whole, `<messageId>:<offset>` while that message "
            "streams and `offset` characters of it are held): the stored messages after it "
            "follow the snapshot, and the deltas of a streaming message join up exactly "
            "with the text held (nothing lost or doubled)."
        )
    )
    async def conversation_events(
        self, info: Info, conversation_id: strawberry.ID, after: str | None = None
    ) -> AsyncGenerator[ConversationEvent, None]:
        user = current_user(info)
        ws = _consumer(info)
        position = Position.parse(after, field="after") if after is not None else None
        conversation = await selectors.aget_conversation(user=user, conversation_id=conversation_id)
        return _conversation_stream(ws, user, conversation.pk, position)

    @strawberry.subscription(
        description="Conversations of the user created, updated, cleared or deleted anywhere."
    )
    async def conversations_changed(self, info: Info) -> AsyncGenerator[ConversationChange, None]:
        user = current_user(info)
        return _user_stream(_consumer(info), user)
