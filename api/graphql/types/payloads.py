"""Mutation payloads: the result fields (null when the mutation did not apply) and
`errors`, the typed input errors (empty on success)."""

from __future__ import annotations

import strawberry

from api.graphql.types.conversations import Conversation
from api.graphql.types.errors import FieldError
from api.graphql.types.messages import Message

ERRORS_DESCRIPTION = "Input errors; empty when the mutation succeeded."


@strawberry.type
class CreateConversationPayload:
    conversation: Conversation | None = None
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class UpdateConversationPayload:
    conversation: Conversation | None = None
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class ArchiveConversationPayload:
    conversation: Conversation | None = None
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class DeleteConversationPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the deleted conversation."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class ClearConversationPayload:
    conversation: Conversation | None = None
    deleted_message_count: int | None = None
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class SendMessagePayload:
    human_message: Message | None = strawberry.field(
        default=None, description="The stored human message."
    )
    ai_message: Message | None = strawberry.field(
        default=None,
        description=(
            "The AI reply as it is now: a STREAMING placeholder for a new turn (follow it with "
            "conversationEvents), or the stored reply when clientMessageId was seen before."
        ),
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class CancelTurnPayload:
    turn_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The turn asked to stop; its reply ends CANCELLED (MessageCompleted).",
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class EditMessagePayload:
    human_message: Message | None = strawberry.field(
        default=None, description="The new version of the edited human message."
    )
    ai_message: Message | None = strawberry.field(
        default=None, description="The STREAMING reply to it (follow conversationEvents)."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class SwitchBranchPayload:
    conversation: Conversation | None = strawberry.field(
        default=None, description="The conversation, its `activeLeafId` the new leaf."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class ForkConversationPayload:
    conversation: Conversation | None = strawberry.field(
        default=None, description="The new conversation."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class RegeneratePayload:
    ai_message: Message | None = strawberry.field(
        default=None, description="The new STREAMING reply to the last human message."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )
