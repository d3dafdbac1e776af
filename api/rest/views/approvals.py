"""`/api/v1/conversations/{id}/tool-calls/`: the tool calls waiting for the user's approval,
and approve / deny one of them (conversations.approvals, conversations.turns.approval)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import (
    ErrorSerializer,
    InputSerializer,
    StrictCharField,
    ToolApprovalSerializer,
)
from api.rest.views.base import ConfabAsyncView, ConfabView, validated
from conversations import selectors, turns
from conversations.approvals.selectors import pending_tool_calls
from conversations.turns.approval import MAX_REASON_CHARS


class DenySerializer(InputSerializer):
    """Optional: why the call is denied (passed to the model with the denial)."""

    reason = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_REASON_CHARS
    )


DECISION_RESPONSES = {
    200: ToolApprovalSerializer,
    (404, "application/json"): OpenApiResponse(
        ErrorSerializer, description="NOT_FOUND: no such call in the user's conversations."
    ),
    (409, "application/json"): OpenApiResponse(
        ErrorSerializer,
        description="TOOL_CALL_ALREADY_DECIDED: approved or denied before (by the user, "
        "by CONFAB_TOOL_APPROVAL_TIMEOUT, or by a cancel); the first decision stands.",
    ),
}
RESUMES = (
    " When no call of the reply waits any more, the turn resumes (in the background: "
    "follow the conversation's events): approved calls run, denied ones are passed to "
    "the model as the tool's result. 503 TURN_CAPACITY_REACHED (nothing recorded) when "
    "this server cannot run the turn now."
)


class PendingToolCallsView(ConfabView):
    @extend_schema(
        operation_id="tool_calls_pending",
        tags=["conversations"],
        summary="The tool calls waiting for the user's approval",
        description="Oldest first. A turn waiting for approval has its AI message in "
        "status `awaiting_approval`; each call here is approved or denied with the "
        "endpoints below.",
        request=None,
        responses={200: ToolApprovalSerializer(many=True)},
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        calls = pending_tool_calls(user=request.user, conversation_id=conversation_id)
        return Response(ToolApprovalSerializer(calls, many=True).data)


class ApproveToolCallView(ConfabAsyncView):
    @extend_schema(
        operation_id="tool_calls_approve",
        tags=["conversations"],
        summary="Approve a tool call the agent waits on",
        description="Returns the call with its decision." + RESUMES,
        request=None,
        responses=DECISION_RESPONSES,
    )
    async def post(self, request: Request, conversation_id: int, call_id: str) -> Response:
        approval = await turns.decide_tool_call(
            user=request.user, conversation_id=conversation_id, call_id=call_id, approve=True
        )
        return Response(ToolApprovalSerializer(approval).data)


class DenyToolCallView(ConfabAsyncView):
    @extend_schema(
        operation_id="tool_calls_deny",
        tags=["conversations"],
        summary="Deny a tool call the agent waits on",
        description="The tool does not run; the model is told the user denied it (with "
        "`reason`, if given). Returns the call with its decision." + RESUMES,
        request=DenySerializer,
        responses=DECISION_RESPONSES,
    )
    async def post(self, request: Request, conversation_id: int, call_id: str) -> Response:
        # Someone else's conversation is 404 whatever the body (a 400 would confirm it).
        await selectors.aget_conversation(user=request.user, conversation_id=conversation_id)
        data: dict[str, Any] = await sync_to_async(validated)(DenySerializer, request.data or {})
        approval = await turns.decide_tool_call(
            user=request.user,
            conversation_id=conversation_id,
            call_id=call_id,
            approve=False,
            reason=data.get("reason"),
        )
        return Response(ToolApprovalSerializer(approval).data)
