"""A tool call waiting for the user's approval (conversations.approvals), built from the
one payload every surface shares (`payloads.tool_approval_payload`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from api.graphql.types.errors import FieldError
from api.graphql.types.messages import parse_timestamp

ERRORS_DESCRIPTION = "Input errors; empty when the mutation succeeded."


@strawberry.type(
    description="A tool call of a paused turn and its decision (null while it waits; "
    "decidedBy: user, timeout or cancel)."
)
class ToolApproval:
    call_id: strawberry.ID
    name: str = strawberry.field(description="The tool's name.")
    arguments: JSON = strawberry.field(description="The call's arguments.")
    message_id: strawberry.ID = strawberry.field(description="The AI message holding the call.")
    decision: str | None = strawberry.field(description="approved, denied, or null: waiting.")
    decided_by: str | None
    reason: str
    decided_at: datetime | None
    deadline: datetime = strawberry.field(
        description="Denied by the server after this (CONFAB_TOOL_APPROVAL_TIMEOUT)."
    )

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ToolApproval:
        return cls(
            call_id=strawberry.ID(payload["call_id"]),
            name=payload["name"],
            arguments=payload["arguments"],
            message_id=strawberry.ID(str(payload["message_id"])),
            decision=payload["decision"],
            decided_by=payload["decided_by"],
            reason=payload["reason"],
            decided_at=parse_timestamp(payload["decided_at"]),
            deadline=parse_timestamp(payload["deadline"]),
        )


@strawberry.type
class ToolCallDecisionPayload:
    tool_call: ToolApproval | None = strawberry.field(
        default=None, description="The call with its decision."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type(
    description="A turn paused: its AI message (AWAITING_APPROVAL) has tool calls that run "
    "only once the user approves them (approveToolCall / denyToolCall)."
)
class ToolApprovalRequested:
    conversation_id: strawberry.ID
    message_id: strawberry.ID
    turn_id: strawberry.ID | None
    calls: list[ToolApproval]


@strawberry.type(
    description="A waiting tool call was approved or denied (by the user on any device, the "
    "timeout, or a cancel)."
)
class ToolApprovalDecided:
    conversation_id: strawberry.ID
    message_id: strawberry.ID
    turn_id: strawberry.ID | None
    call: ToolApproval
