"""Turns: send a message, cancel, regenerate (conversations.turns). Each returns at
once; the reply streams on in the background and is followed with the
`conversationEvents` subscription."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql.context import current_user
from api.graphql.errors import with_field_errors
from api.graphql.types.approvals import ToolApproval, ToolCallDecisionPayload
from api.graphql.types.messages import Message, OnBusy
from api.graphql.types.payloads import (
    CancelTurnPayload,
    EditMessagePayload,
    RegeneratePayload,
    SendMessagePayload,
)
from conversations import selectors, turns
from conversations.payloads import tool_approval_payload


async def _send(
    user: Any,
    conversation_id: str,
    content: str | None,
    client_message_id: str | None,
    attachments: list[strawberry.ID] | None = None,
    on_busy: Any = None,
) -> SendMessagePayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=conversation_id)
    handle = await turns.start_turn(
        conversation=conversation,
        content=content,
        client_message_id=client_message_id,
        attachments=list(attachments) if attachments else None,
        on_busy=on_busy.value if on_busy is not None else None,
    )
    return SendMessagePayload(
        human_message=Message.from_model(handle.human_message),
        ai_message=Message.from_optional(handle.ai_message),
    )


async def _cancel(user: Any, conversation_id: str) -> CancelTurnPayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=conversation_id)
    turn_id = await turns.cancel_turn(conversation=conversation)
    return CancelTurnPayload(turn_id=strawberry.ID(str(turn_id)))


async def _regenerate(user: Any, conversation_id: str) -> RegeneratePayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=conversation_id)
    handle = await turns.start_turn(conversation=conversation, regenerate=True)
    return RegeneratePayload(ai_message=Message.from_optional(handle.ai_message))


async def _edit(
    user: Any,
    conversation_id: str,
    message_id: str,
    content: str,
    client_message_id: str | None,
) -> EditMessagePayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=conversation_id)
    handle = await turns.start_turn(
        conversation=conversation,
        content=content,
        client_message_id=client_message_id,
        edit_of=message_id,
    )
    return EditMessagePayload(
        human_message=Message.from_model(handle.human_message),
        ai_message=Message.from_optional(handle.ai_message),
    )


async def _decide(
    user: Any, conversation_id: str, call_id: str, approve: bool, reason: str | None = None
) -> ToolCallDecisionPayload:
    approval = await turns.decide_tool_call(
        user=user, conversation_id=conversation_id, call_id=call_id, approve=approve, reason=reason
    )
    return ToolCallDecisionPayload(
        tool_call=ToolApproval.from_payload(tool_approval_payload(approval))
    )


DECISION = (
    " NOT_FOUND for a call not in the user's conversations; TOOL_CALL_ALREADY_DECIDED when "
    "it was approved or denied before (by the user, the timeout or a cancel). When no call "
    "of the reply waits any more the turn resumes (follow conversationEvents)."
)


@strawberry.type
class TurnMutations:
    @strawberry.mutation(
        description="Approve a tool call a paused turn waits on (ToolApprovalRequested): "
        "the tool runs when the turn resumes." + DECISION
    )
    async def approve_tool_call(
        self, info: Info, conversation_id: strawberry.ID, call_id: strawberry.ID
    ) -> ToolCallDecisionPayload:
        user = current_user(info)
        return await with_field_errors(
            ToolCallDecisionPayload, _decide(user, conversation_id, call_id, True)
        )

    @strawberry.mutation(
        description="Deny a tool call a paused turn waits on: the tool does not run and the "
        "model is told the user denied it (with `reason`, if given)." + DECISION
    )
    async def deny_tool_call(
        self,
        info: Info,
        conversation_id: strawberry.ID,
        call_id: strawberry.ID,
        reason: str | None = None,
    ) -> ToolCallDecisionPayload:
        user = current_user(info)
        return await with_field_errors(
            ToolCallDecisionPayload, _decide(user, conversation_id, call_id, False, reason)
        )

    @strawberry.mutation(
        description=(
            "Store a human message and start the agent's reply; returns the human message and "
            "the STREAMING AI placeholder at once. The same `clientMessageId` again returns the "
            "turn it started, without a new one. TURN_IN_PROGRESS when a turn is running; "
            "TURN_CAPACITY_REACHED (nothing stored, retry after `retryAfter` seconds) when "
            "this server runs as many turns as it can. `attachments`: ids of the user's files "
            "(uploaded with `POST /api/v1/files/`; `content` may then be omitted). "
            "`onBusy: ENQUEUE` (default: the agent's setting): while a turn runs the message "
            "is stored as QUEUED (aiMessage null) and answered after the running turn, in order."
        )
    )
    async def send_message(
        self,
        info: Info,
        conversation_id: strawberry.ID,
        content: str | None = None,
        client_message_id: str | None = None,
        attachments: list[strawberry.ID] | None = None,
        on_busy: OnBusy | None = None,
    ) -> SendMessagePayload:
        user = current_user(info)
        return await with_field_errors(
            SendMessagePayload,
            _send(user, conversation_id, content, client_message_id, attachments, on_busy),
        )

    @strawberry.mutation(
        description="Stop the running turn (NO_ACTIVE_TURN when none); its reply ends CANCELLED."
    )
    async def cancel_turn(self, info: Info, conversation_id: strawberry.ID) -> CancelTurnPayload:
        user = current_user(info)
        return await with_field_errors(CancelTurnPayload, _cancel(user, conversation_id))

    @strawberry.mutation(
        description=(
            "Answer the last human message of the active branch again: a new STREAMING reply, "
            "a sibling of the old one, which is kept (its `siblings` lists both; "
            "ConversationBranchChanged follows). NOTHING_TO_REGENERATE when there is no human "
            "message; TURN_IN_PROGRESS and TURN_CAPACITY_REACHED as for sendMessage."
        )
    )
    async def regenerate(self, info: Info, conversation_id: strawberry.ID) -> RegeneratePayload:
        user = current_user(info)
        return await with_field_errors(RegeneratePayload, _regenerate(user, conversation_id))

    @strawberry.mutation(
        description=(
            "Store a new version of a human message (a sibling of `messageId`) and start the "
            "reply to it; the old version and its replies stay on their branch. Returns the "
            "new human message and the STREAMING reply at once (ConversationBranchChanged "
            "follows). NOT_FOUND when the message is not in the conversation; an input error "
            "on `messageId` when it is not a human message; TURN_IN_PROGRESS while a turn runs."
        )
    )
    async def edit_message(
        self,
        info: Info,
        conversation_id: strawberry.ID,
        message_id: strawberry.ID,
        content: str,
        client_message_id: str | None = None,
    ) -> EditMessagePayload:
        user = current_user(info)
        return await with_field_errors(
            EditMessagePayload,
            _edit(user, conversation_id, message_id, content, client_message_id),
        )
