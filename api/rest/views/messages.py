"""`/api/v1/conversations/{id}/messages/`: history pages, one message, send a message."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import MessageCreateSerializer, MessagePageSerializer, MessageSerializer
from api.rest.views.base import ConfabAsyncView, ConfabView, validated
from api.rest.views.turns import turn_response, turn_responses
from conversations import inputs, selectors, turns

HISTORY_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50, max 200)."),
    OpenApiParameter(
        "before", OpenApiTypes.INT, description="Messages older than this id (`older_cursor`)."
    ),
    OpenApiParameter(
        "after", OpenApiTypes.INT, description="Messages newer than this id (`newer_cursor`)."
    ),
]


class MessagesView(ConfabAsyncView):
    # GET runs `history` with authentication and throttles in one thread hop
    # (ConfabAsyncView.sync_handlers); `get` carries the schema and is what adrf would
    # call without this map.
    sync_handlers = {"GET": "history"}

    @extend_schema(
        operation_id="messages_list",
        tags=["messages"],
        summary="A page of history, oldest first (default: the newest page)",
        description="Keyset pages on the message id: the cost is the same at any depth. "
        "Use either `before` or `after`.",
        parameters=HISTORY_PARAMETERS,
        responses={200: MessagePageSerializer},
    )
    async def get(self, request: Request, conversation_id: int) -> Response:
        return await sync_to_async(self.history)(request, conversation_id)

    def history(self, request: Request, conversation_id: int) -> Response:
        params = request.query_params
        page_request = selectors.parse_for_conversation(
            lambda: inputs.parse_history_request(
                before=params.get("before"), after=params.get("after"), limit=params.get("limit")
            ),
            user=request.user,
            conversation_id=conversation_id,
        )
        page = selectors.user_message_page(
            user=request.user,
            conversation_id=conversation_id,
            request=page_request,
            as_rows=True,  # written straight out: stored JSON is not parsed (history_pages)
        )
        return Response(MessagePageSerializer(page).data)

    @extend_schema(
        operation_id="messages_send",
        tags=["messages"],
        summary="Send a message and run the agent's turn",
        description="JSON: waits for the turn and returns the human message and the final "
        "AI reply (a failed reply is `status: failed` with `error`, still 201). "
        "`client_message_id` makes retries safe. Rate limited (`turns`).",
        request=MessageCreateSerializer,
        responses=turn_responses(
            "The human message and the final reply.",
            "IDEMPOTENCY_KEY_REUSED: the `client_message_id` was used for other content.",
        ),
        examples=[
            OpenApiExample(
                "Send (safe to retry)",
                value={"content": "Hello!", "client_message_id": "4f7d2c1e"},
                request_only=True,
            ),
            OpenApiExample(
                "Queue behind a running turn (an app flushing offline messages)",
                value={
                    "content": "And tomorrow?",
                    "client_message_id": "9a1b",
                    "on_busy": "enqueue",
                },
                request_only=True,
            ),
            OpenApiExample(
                "A turn is running",
                value={
                    "type": "conflict",
                    "code": "TURN_IN_PROGRESS",
                    "detail": "A turn is already running in this conversation.",
                },
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    async def post(
        self, request: Request, conversation_id: int
    ) -> Response | StreamingHttpResponse:
        # Ownership before the body: someone else's conversation is a 404 whatever is sent.
        conversation = await selectors.aget_conversation(
            user=request.user, conversation_id=conversation_id
        )
        data = validated(MessageCreateSerializer, request.data)
        return await turn_response(
            self,
            request,
            conversation,
            lambda: turns.start_turn(
                conversation=conversation,
                content=data.get("content"),
                client_message_id=data.get("client_message_id"),
                attachments=data.get("attachments"),
                on_busy=data.get("on_busy"),
            ),
        )


class MessageDetailView(ConfabView):
    @extend_schema(
        operation_id="messages_retrieve",
        tags=["messages"],
        summary="Get one message",
        responses={200: MessageSerializer},
    )
    def get(self, request: Request, conversation_id: int, message_id: int) -> Response:
        message = selectors.get_user_message(
            user=request.user, conversation_id=conversation_id, message_id=message_id
        )
        return Response(MessageSerializer(message).data)
