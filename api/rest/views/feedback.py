"""`/api/v1/conversations/{id}/messages/{id}/feedback/`: rate an AI reply, clear it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import (
    ErrorSerializer,
    InputSerializer,
    MessageSerializer,
    StrictCharField,
)
from api.rest.views.base import ConfabView, validated
from conversations import selectors
from conversations.feedback import services
from conversations.feedback.models import Rating
from conversations.models import ConversationMessage


class FeedbackSerializer(InputSerializer):
    """A rating of an AI reply; replaces the user's earlier one."""

    rating = serializers.ChoiceField(choices=Rating.choices)
    comment = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=services.MAX_COMMENT_CHARS
    )


class MessageFeedbackView(ConfabView):
    @extend_schema(
        operation_id="messages_feedback_set",
        tags=["messages"],
        summary="Rate an AI reply (thumbs up or down, optional comment)",
        description="Replaces the user's earlier rating. Human and tool messages, and "
        "replies still streaming: 409 `FEEDBACK_NOT_ALLOWED`. Returns the message with "
        "its `feedback`.",
        request=FeedbackSerializer,
        responses={
            200: MessageSerializer,
            (409, "application/json"): OpenApiResponse(
                ErrorSerializer, description="FEEDBACK_NOT_ALLOWED: not a finished AI reply."
            ),
        },
    )
    def put(self, request: Request, conversation_id: int, message_id: int) -> Response:
        message = self.get_message(request, conversation_id, message_id)
        data = validated(FeedbackSerializer, request.data)
        services.set_feedback(
            user=request.user, message=message, rating=data["rating"], comment=data.get("comment")
        )
        return Response(MessageSerializer(message).data)

    @extend_schema(
        operation_id="messages_feedback_clear",
        tags=["messages"],
        summary="Remove the user's rating of a message",
        request=None,
        responses={200: MessageSerializer},
    )
    def delete(self, request: Request, conversation_id: int, message_id: int) -> Response:
        message = self.get_message(request, conversation_id, message_id)
        services.clear_feedback(user=request.user, message=message)
        return Response(MessageSerializer(message).data)

    def get_message(
        self, request: Request, conversation_id: int, message_id: int
    ) -> ConversationMessage:
        return selectors.get_user_message(
            user=request.user, conversation_id=conversation_id, message_id=message_id
        )
