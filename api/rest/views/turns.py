"""Turn endpoints: send a message, edit one, regenerate, cancel.

They are async views (adrf): waiting for a turn or streaming its events holds
no thread. The turn itself runs in its own task (`conversations.turns`), so a
client that disconnects does not stop it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest import sse
from api.rest.event_schemas import CONVERSATION_EVENT
from api.rest.serializers import (
    CancelResultSerializer,
    ErrorSerializer,
    MessageEditSerializer,
    TurnResultSerializer,
)
from api.rest.views.base import ConfabAsyncView, validated
from conversations import selectors, turns
from conversations.models import Conversation

SSE_DESCRIPTION = (
    "With `Accept: text/event-stream`: the turn's events as Server-Sent Events "
    "(`event: <type>`, `id: <position>`, `data: <json>`): `message.created`, `message.delta` "
    "`{message_id, index, offset, delta}`, `message.completed`, `message.failed` "
    "`{message, error}`, `conversation.branch_changed` (regenerate, edit). The stream "
    "ends after the final reply's `message.completed` or `message.failed`. A repeated "
    "`client_message_id` streams the stored messages (and the rest of the turn if it "
    "still runs: its deltas continue exactly where the stored text ends). `id` is the "
    "event's position (`<message_id>` or `<message_id>:<offset>`): give it to "
    "`GET /api/v1/conversations/{id}/events/` as `Last-Event-ID` to resume a dropped stream."
)


BUSY = (
    "TURN_IN_PROGRESS: another turn is running (or messages are queued) in this "
    "conversation; header `Retry-After` (seconds)."
)


def turn_responses(created_description: str, conflicts: str = "") -> dict:
    """Responses of a turn-starting operation: JSON result, event stream, errors
    (`conflicts`: the operation's other 409 codes)."""
    return {
        (201, "application/json"): OpenApiResponse(
            TurnResultSerializer, description=created_description
        ),
        (200, "application/json"): OpenApiResponse(
            TurnResultSerializer,
            description="A repeated `client_message_id`: the first turn's result "
            "(header `Idempotent-Replayed: true`); no new turn.\n\n" + SSE_DESCRIPTION,
        ),
        (200, "text/event-stream"): OpenApiResponse(
            CONVERSATION_EVENT,
            description="Each SSE event's `data:` is one ConversationEvent (JSON).",
        ),
        (202, "application/json"): OpenApiResponse(
            TurnResultSerializer,
            description="The turn outlasted the server's wait; it goes on running and "
            "`ai_message` is still `streaming` (poll it). Or, with `on_busy: enqueue` while "
            "a turn runs: the human message is stored as `queued` and `ai_message` is null; "
            "its turn runs after the ones before it (follow "
            "`GET /api/v1/conversations/{id}/events/`).",
        ),
        (409, "application/json"): OpenApiResponse(
            ErrorSerializer,
            description=f"{BUSY} {conflicts}".strip(),
        ),
    }


async def turn_response(
    view: ConfabAsyncView,
    request: Request,
    conversation: Conversation,
    start: Callable[[], Awaitable[turns.TurnHandle]],
) -> Response | StreamingHttpResponse:
    """Start a turn and answer with its result (JSON) or its live events (SSE)."""
    if view.wants_event_stream(request):
        handle, events = await sse.open_turn_stream(conversation_id=conversation.pk, start=start)
        await release_request_connection()
        response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        # Tell nginx-style proxies not to buffer the stream.
        response["X-Accel-Buffering"] = "no"
        response["Idempotent-Replayed"] = "true" if handle.existing else "false"
        return response
    handle = await start()
    await release_request_connection()
    if handle.queued:
        # Stored and waiting behind the running turn: answered later (follow events/).
        result = turns.TurnResult(human_message=handle.human_message, ai_message=None)
        return Response(
            TurnResultSerializer(result).data,
            status=202,
            headers={"Idempotent-Replayed": "true" if handle.existing else "false"},
        )
    status = 200 if handle.existing else 201
    try:
        result = await turns.wait_for_result(handle)
    except TimeoutError:
        result = turns.TurnResult(human_message=handle.human_message, ai_message=handle.ai_message)
        status = 202
    return Response(
        TurnResultSerializer(result).data,
        status=status,
        headers={"Idempotent-Replayed": "true" if handle.existing else "false"},
    )


async def release_request_connection() -> None:
    """Hand the request thread's database connection (authentication, ownership check)
    back to the pool before waiting on a turn for up to minutes: otherwise every
    waiting request would hold one of the process's DB_POOL_MAX_SIZE connections."""
    await sync_to_async(close_old_connections)()


class RegenerateView(ConfabAsyncView):
    @extend_schema(
        operation_id="conversations_regenerate",
        tags=["conversations"],
        summary="Answer the last human message again; the old reply is kept as a sibling",
        description="The new reply is a sibling of the previous one under the last human "
        "message of the active branch (its `siblings` lists both); the old reply and what "
        "followed it stay on their branch, nothing is deleted. The new reply's branch becomes "
        "the active one (`conversation.branch_changed`). Returns like `messages_send`. 409 "
        "NOTHING_TO_REGENERATE when there is no human message, TURN_IN_PROGRESS while a "
        "turn runs.",
        request=None,
        responses=turn_responses(
            "The new reply (after the turn ended).",
            "NOTHING_TO_REGENERATE: the conversation has no human message.",
        ),
    )
    async def post(
        self, request: Request, conversation_id: int
    ) -> Response | StreamingHttpResponse:
        conversation = await selectors.aget_conversation(
            user=request.user, conversation_id=conversation_id
        )
        return await turn_response(
            self,
            request,
            conversation,
            lambda: turns.start_turn(conversation=conversation, regenerate=True),
        )


class CancelView(ConfabAsyncView):
    @extend_schema(
        operation_id="conversations_cancel",
        tags=["conversations"],
        summary="Stop the running turn",
        description="The reply ends as `cancelled` with the text streamed so far. "
        "409 NO_ACTIVE_TURN when no turn runs.",
        request=None,
        responses={
            202: CancelResultSerializer,
            (409, "application/json"): OpenApiResponse(
                ErrorSerializer, description="NO_ACTIVE_TURN."
            ),
        },
    )
    async def post(self, request: Request, conversation_id: int) -> Response:
        conversation = await selectors.aget_conversation(
            user=request.user, conversation_id=conversation_id
        )
        turn_id = await turns.cancel_turn(conversation=conversation)
        return Response(CancelResultSerializer({"turn_id": turn_id}).data, status=202)


class MessageEditView(ConfabAsyncView):
    @extend_schema(
        operation_id="messages_edit",
        tags=["messages"],
        summary="Send a new version of a human message and run a turn on it",
        description="The new version is a sibling of the edited message (its `siblings` "
        "lists both); the old version and every reply to it are kept on their branch. The "
        "new version and its reply become the active branch (`conversation.branch_changed`). "
        "Returns like `messages_send` (JSON or `Accept: text/event-stream`). 400 when the "
        "message is not a human one; 404 when it is not in this conversation.",
        request=MessageEditSerializer,
        responses=turn_responses(
            "The new version of the human message and its reply.",
            "IDEMPOTENCY_KEY_REUSED: the `client_message_id` was used for other content.",
        ),
    )
    async def post(
        self, request: Request, conversation_id: int, message_id: int
    ) -> Response | StreamingHttpResponse:
        conversation = await selectors.aget_conversation(
            user=request.user, conversation_id=conversation_id
        )
        data = validated(MessageEditSerializer, request.data)
        return await turn_response(
            self,
            request,
            conversation,
            lambda: turns.start_turn(
                conversation=conversation,
                content=data.get("content"),
                client_message_id=data.get("client_message_id"),
                edit_of=message_id,
            ),
        )
