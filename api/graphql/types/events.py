"""Subscription events: the events of `conversations.events`, converted one to one.

`to_conversation_event` / `to_conversation_change` are the only conversions;
the message inside an event goes through `Message.from_payload` (like the query
results), the conversation through `conversation_from_event` (a row for the
strawberry-django type, as the queries give it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

import strawberry

from api.graphql.types.approvals import ToolApproval, ToolApprovalDecided, ToolApprovalRequested
from api.graphql.types.conversations import Conversation, conversation_from_event
from api.graphql.types.messages import Message
from conversations.events import EventType

logger = logging.getLogger(__name__)


@strawberry.type(description="A message was stored (a human message, or an AI reply starting).")
class MessageCreated:
    message: Message


@strawberry.type(
    description=(
        "More text of a streaming reply. `index` counts the message's deltas from 0; "
        "`offset` is where `delta` starts in the message's text."
    )
)
class MessageDelta:
    conversation_id: strawberry.ID
    message_id: strawberry.ID
    index: int
    offset: int
    delta: str


@strawberry.type(description="A reply ended: COMPLETE, or CANCELLED with its partial text.")
class MessageCompleted:
    message: Message


@strawberry.type(description="Why a reply failed (stable code, safe message).")
class MessageError:
    code: str
    message: str


@strawberry.type(description="A reply failed; the message keeps its partial text.")
class MessageFailed:
    message: Message
    error: MessageError


@strawberry.type(
    description="Messages were removed (not sent any more: a regenerate keeps the old reply)."
)
class MessageDeleted:
    conversation_id: strawberry.ID
    message_ids: list[strawberry.ID]


@strawberry.type(
    description=(
        "The active branch changed (a regenerate, an edit, a branch switch on any device): "
        "its messages are the path to `activeLeafId`; re-read the history."
    )
)
class ConversationBranchChanged:
    conversation_id: strawberry.ID
    active_leaf_id: strawberry.ID | None
    conversation: Conversation


@strawberry.type(description="A conversation was created.")
class ConversationCreated:
    conversation: Conversation


@strawberry.type(
    description="A conversation changed (title, context, archive, a turn started or ended)."
)
class ConversationUpdated:
    conversation: Conversation


@strawberry.type(description="Every message of a conversation was deleted.")
class ConversationCleared:
    conversation: Conversation


@strawberry.type(description="A conversation was deleted (its last state).")
class ConversationDeleted:
    conversation: Conversation


ConversationEvent = Annotated[
    MessageCreated
    | MessageDelta
    | MessageCompleted
    | MessageFailed
    | MessageDeleted
    | ConversationBranchChanged
    | ConversationUpdated
    | ConversationCleared
    | ConversationDeleted
    | ToolApprovalRequested
    | ToolApprovalDecided,
    strawberry.union("ConversationEvent", description="What happens in one conversation, live."),
]

ConversationChange = Annotated[
    ConversationCreated
    | ConversationUpdated
    | ConversationCleared
    | ConversationDeleted
    | ToolApprovalRequested,
    strawberry.union("ConversationChange", description="A change to the user's conversation list."),
]


def _ids(values: list[Any]) -> list[strawberry.ID]:
    return [strawberry.ID(str(value)) for value in values]


def _message(event: dict[str, Any]) -> Message:
    return Message.from_payload(event["message"])


def _conversation(event: dict[str, Any]) -> Any:
    return conversation_from_event(event["conversation"])


_CONVERTERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    EventType.MESSAGE_CREATED: lambda e: MessageCreated(message=_message(e)),
    EventType.MESSAGE_DELTA: lambda e: MessageDelta(
        conversation_id=strawberry.ID(str(e["conversation_id"])),
        message_id=strawberry.ID(str(e["message_id"])),
        index=e["index"],
        offset=e["offset"],
        delta=e["delta"],
    ),
    EventType.MESSAGE_COMPLETED: lambda e: MessageCompleted(message=_message(e)),
    EventType.MESSAGE_FAILED: lambda e: MessageFailed(
        message=_message(e),
        error=MessageError(code=e["error"]["code"], message=e["error"]["message"]),
    ),
    EventType.MESSAGE_DELETED: lambda e: MessageDeleted(
        conversation_id=strawberry.ID(str(e["conversation_id"])),
        message_ids=_ids(e["message_ids"]),
    ),
    EventType.CONVERSATION_BRANCH_CHANGED: lambda e: ConversationBranchChanged(
        conversation_id=strawberry.ID(str(e["conversation_id"])),
        active_leaf_id=strawberry.ID(str(e["active_leaf_id"])) if e["active_leaf_id"] else None,
        conversation=_conversation(e),
    ),
    EventType.CONVERSATION_CREATED: lambda e: ConversationCreated(conversation=_conversation(e)),
    EventType.CONVERSATION_UPDATED: lambda e: ConversationUpdated(conversation=_conversation(e)),
    EventType.CONVERSATION_CLEARED: lambda e: ConversationCleared(conversation=_conversation(e)),
    EventType.CONVERSATION_DELETED: lambda e: ConversationDeleted(conversation=_conversation(e)),
    EventType.TOOL_APPROVAL_REQUESTED: lambda e: ToolApprovalRequested(
        conversation_id=strawberry.ID(str(e["conversation_id"])),
        message_id=strawberry.ID(str(e["message_id"])),
        turn_id=strawberry.ID(e["turn_id"]) if e["turn_id"] else None,
        calls=[ToolApproval.from_payload(call) for call in e["calls"]],
    ),
    EventType.TOOL_APPROVAL_DECIDED: lambda e: ToolApprovalDecided(
        conversation_id=strawberry.ID(str(e["conversation_id"])),
        message_id=strawberry.ID(str(e["message_id"])),
        turn_id=strawberry.ID(e["turn_id"]) if e["turn_id"] else None,
        call=ToolApproval.from_payload(e["call"]),
    ),
}

_CHANGES = {
    EventType.CONVERSATION_CREATED,
    EventType.CONVERSATION_UPDATED,
    EventType.CONVERSATION_CLEARED,
    EventType.CONVERSATION_DELETED,
    # A paused turn waits for the user wherever they are (the list's devices too).
    EventType.TOOL_APPROVAL_REQUESTED,
}


def to_conversation_event(event: dict[str, Any]) -> Any | None:
    """The GraphQL type of an event of a conversation's group (None: not one we know, or
    malformed; a bad event is logged and skipped rather than ending the subscription)."""
    converter = _CONVERTERS.get(event.get("type", ""))
    if converter is None:
        return None
    try:
        return converter(event)
    except (KeyError, TypeError, ValueError):
        logger.warning("Skipped a malformed %s event", event.get("type"), exc_info=True)
        return None


def to_conversation_change(event: dict[str, Any]) -> Any | None:
    """The GraphQL type of an event of the user's group (None: not a list change)."""
    if event.get("type") not in _CHANGES:
        return None
    return to_conversation_event(event)
