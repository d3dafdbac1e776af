"""Messages, built from `payloads.message_payload` (the message shape of every surface;
`Message` says why this type is not a strawberry-django one)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from django.utils.dateparse import parse_datetime
from strawberry.scalars import JSON

from api.graphql.types.feedback import Feedback
from conversations import models
from conversations.payloads import message_payload

# The enums mirror the model choices (one source of truth): SYSTEM/HUMAN/AI/TOOL
# and STREAMING/COMPLETE/FAILED/CANCELLED.
MessageRole = strawberry.enum(
    Enum("MessageRole", [(choice.name, choice.value) for choice in models.MessageRole]),
    description="Who wrote a message.",
)
MessageStatus = strawberry.enum(
    Enum("MessageStatus", [(choice.name, choice.value) for choice in models.MessageStatus]),
    description="STREAMING while a reply is being written; then COMPLETE, FAILED or CANCELLED. "
    "QUEUED: a human message sent with onBusy ENQUEUE, waiting for the running turn (then "
    "COMPLETE when its own turn begins).",
)
OnBusy = strawberry.enum(
    Enum("OnBusy", [(choice.name, choice.value) for choice in models.OnBusy]),
    description="A message sent while a turn runs: REJECT (TURN_IN_PROGRESS) or ENQUEUE "
    "(stored as QUEUED, answered after the running turn, in order).",
)


def parse_timestamp(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def optional_id(value: Any) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type(
    description="A file of the user's (an upload or a tool's output). `url` serves its bytes "
    "without a token (for <img> tags) until it expires, about an hour."
)
class File:
    id: strawberry.ID
    name: str
    content_type: str = strawberry.field(description="From the bytes, e.g. image/png.")
    size: int
    sha256: str
    width: int | None
    height: int | None
    url: str = strawberry.field(description="A signed path that expires.")
    created_at: datetime | None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> File:
        """From `conversations.files.links.file_payload` (or a message's attachment)."""
        return cls(
            id=strawberry.ID(str(payload["id"])),
            name=payload["name"],
            content_type=payload["content_type"],
            size=payload["size"],
            sha256=payload["sha256"],
            width=payload.get("width"),
            height=payload.get("height"),
            url=payload["url"],
            created_at=parse_timestamp(payload.get("created_at")),
        )


@strawberry.type(description="The versions of a message: its parent's children, itself included.")
class Siblings:
    ids: list[strawberry.ID] = strawberry.field(
        description="The message and its siblings (regenerated replies, edited versions), "
        "oldest first."
    )
    index: int = strawberry.field(description="This message's place in `ids`.")


@strawberry.type(description="One stored message (a LangChain message, losslessly).")
class Message:
    """Built from `payloads.message_payload`, not a strawberry-django type over
    `ConversationMessage` like `Conversation`: the fast path of the history page
    (`messages`), kept for this type alone. The same 50-message page with the same
    fields costs 1.48-1.53x the CPU as a strawberry-django type (its resolver pipeline
    runs for every field of every row), against a page target GraphQL already misses
    (`python -m bench.graphql_types`, bench/BENCHMARKS.md "GraphQL types"). Events, REST
    and SSE send the same dict, so subscriptions read it with no second path."""

    id: strawberry.ID
    conversation_id: strawberry.ID
    role: MessageRole  # type: ignore[valid-type]
    text: str = strawberry.field(description="Plain text, for lists and search.")
    content: JSON = strawberry.field(
        description='The lossless LangChain message: {"_type": "AIMessage", "_value": {...}}.'
    )
    attachments: list[File] = strawberry.field(
        description="The files this message references (attachments, a tool's output)."
    )
    status: MessageStatus  # type: ignore[valid-type]
    turn_id: strawberry.ID | None
    client_message_id: str | None
    model: str
    usage: JSON | None = strawberry.field(
        description="Token usage: {input_tokens, output_tokens, total_tokens}."
    )
    error: JSON | None = strawberry.field(description="{code, message} of a failed reply.")
    created_at: datetime
    updated_at: datetime
    feedback: Feedback | None = strawberry.field(
        default=None, description="The user's rating of this reply (AI messages only)."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The message this one follows in the conversation's tree (null: a first "
        "message).",
    )
    siblings: Siblings | None = strawberry.field(
        default=None,
        description="Its versions: show `< index+1 / len(ids) >` when there are several; "
        "switchBranch(messageId) shows another one.",
    )

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Message:
        """From the `message` of an event (or `payloads.message_payload`)."""
        return cls(
            id=strawberry.ID(str(payload["id"])),
            conversation_id=strawberry.ID(str(payload["conversation"])),
            role=MessageRole(payload["role"]),
            text=payload["text"],
            content=payload["content"],
            attachments=[File.from_payload(item) for item in payload.get("attachments", [])],
            status=MessageStatus(payload["status"]),
            turn_id=optional_id(payload["turn_id"]),
            client_message_id=payload["client_message_id"],
            model=payload["model"],
            usage=payload["usage"],
            error=payload["error"],
            created_at=parse_timestamp(payload["created_at"]),  # type: ignore[arg-type]
            updated_at=parse_timestamp(payload["updated_at"]),  # type: ignore[arg-type]
            feedback=Feedback.from_payload(payload.get("feedback")),
            parent_id=optional_id(payload.get("parent_id")),
            siblings=Siblings(
                ids=[strawberry.ID(str(pk)) for pk in payload["siblings"]["ids"]],
                index=payload["siblings"]["index"],
            )
            if payload.get("siblings")
            else None,
        )

    @classmethod
    def from_model(cls, message: models.ConversationMessage) -> Message:
        return cls.from_payload(message_payload(message))

    @classmethod
    def from_optional(cls, message: models.ConversationMessage | None) -> Message | None:
        return None if message is None else cls.from_model(message)
