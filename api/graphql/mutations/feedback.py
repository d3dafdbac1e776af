"""Rate an AI reply or clear the rating (conversations.feedback.services)."""

from __future__ import annotations

from typing import Any

import strawberry
from channels.db import database_sync_to_async
from strawberry.types import Info

from api.graphql.context import current_user
from api.graphql.errors import with_field_errors
from api.graphql.types.errors import FieldError
from api.graphql.types.feedback import FeedbackRating
from api.graphql.types.messages import Message
from api.graphql.types.payloads import ERRORS_DESCRIPTION
from conversations import selectors
from conversations.feedback import services


@strawberry.type
class MessageFeedbackPayload:
    message: Message | None = strawberry.field(
        default=None, description="The message, with its `feedback` as it is now."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@database_sync_to_async
def _set(
    user: Any, conversation_id: str, message_id: str, rating: str, comment: str | None
) -> MessageFeedbackPayload:
    message = selectors.get_user_message(
        user=user, conversation_id=conversation_id, message_id=message_id
    )
    services.set_feedback(user=user, message=message, rating=rating, comment=comment)
    return MessageFeedbackPayload(message=Message.from_model(message))


@database_sync_to_async
def _clear(user: Any, conversation_id: str, message_id: str) -> MessageFeedbackPayload:
    message = selectors.get_user_message(
        user=user, conversation_id=conversation_id, message_id=message_id
    )
    services.clear_feedback(user=user, message=message)
    return MessageFeedbackPayload(message=Message.from_model(message))


@strawberry.type
class FeedbackMutations:
    @strawberry.mutation(
        description="Rate an AI reply (replaces the user's earlier rating). Other messages, "
        "and replies still streaming: FEEDBACK_NOT_ALLOWED."
    )
    async def set_message_feedback(
        self,
        info: Info,
        conversation_id: strawberry.ID,
        message_id: strawberry.ID,
        rating: FeedbackRating,  # type: ignore[valid-type]
        comment: str | None = None,
    ) -> MessageFeedbackPayload:
        user = current_user(info)
        return await with_field_errors(
            MessageFeedbackPayload,
            _set(user, conversation_id, message_id, rating.value, comment),
        )

    @strawberry.mutation(description="Remove the user's rating of a message.")
    async def clear_message_feedback(
        self, info: Info, conversation_id: strawberry.ID, message_id: strawberry.ID
    ) -> MessageFeedbackPayload:
        user = current_user(info)
        return await with_field_errors(
            MessageFeedbackPayload, _clear(user, conversation_id, message_id)
        )
