"""`GET /api/v1/conversations/{id}/events/`: the conversation's live events as a resumable
Server-Sent Events stream (what the websocket sends, for clients that only speak HTTP)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request

from api.rest import sse
from api.rest.event_schemas import CONVERSATION_EVENT
from api.rest.serializers import ErrorSerializer
from api.rest.views.base import ConfabAsyncView
from api.rest.views.turns import release_request_connection
from conversations import selectors
from conversations.resume import Position

EVENTS_DESCRIPTION = (
    "Always `text/event-stream`. The first event is a `conversation.updated` snapshot, "
    "sent once the server listens; then the stored messages after the position the "
    "client gives (`Last-Event-ID` header, or `?after_id=`; none: every message), then "
    "every live event of the conversation until it is deleted. Each event's `id:` is its "
    "position: `<message_id>` (every message up to it held whole) or "
    "`<message_id>:<offset>` (that message still streams and the client holds `offset` "
    "characters of its text). Reconnecting with the last `id:` received continues "
    "exactly there: the rest of a streaming message arrives as deltas that join up with "
    "what the client holds, nothing is doubled. Comment lines (`: keepalive`) keep idle "
    "connections open."
)


class ConversationEventsView(ConfabAsyncView):
    @extend_schema(
        operation_id="conversations_events",
        tags=["conversations"],
        summary="The conversation's live events (resumable Server-Sent Events)",
        description=EVENTS_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "after_id",
                OpenApiTypes.STR,
                description="Resume after this event id (same as the `Last-Event-ID` header, "
                "which wins when both are sent).",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                description="The `id:` of the last event received (sent by EventSource on "
                "reconnect).",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                CONVERSATION_EVENT,
                description="Each SSE event's `data:` is one ConversationEvent (JSON); its "
                "`event:` line repeats `type`, its `id:` is the position.",
            ),
            (400, "application/json"): OpenApiResponse(
                ErrorSerializer,
                description="VALIDATION_ERROR: `Last-Event-ID` / `after_id` is not an event id.",
            ),
            (404, "application/json"): OpenApiResponse(ErrorSerializer, description="NOT_FOUND."),
        },
    )
    async def get(self, request: Request, conversation_id: int) -> StreamingHttpResponse:
        conversation = await selectors.aget_conversation(
            user=request.user, conversation_id=conversation_id
        )
        header = request.headers.get("Last-Event-ID")
        if header is not None and header.strip():
            position = Position.parse(header, field="Last-Event-ID")
        else:
            position = Position.parse(request.query_params.get("after_id"))
        events = await sse.open_conversation_stream(
            user=request.user, conversation_id=conversation.pk, position=position
        )
        await release_request_connection()
        response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
