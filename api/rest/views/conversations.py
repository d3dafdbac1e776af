"""`/api/v1/conversations/`: list, create, read, change, delete, clear."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import (
    ConversationCreateSerializer,
    ConversationPageSerializer,
    ConversationSerializer,
    ConversationUpdateSerializer,
    ErrorSerializer,
    MessageChoiceSerializer,
)
from api.rest.views.base import ConfabView, validated
from conversations import inputs, selectors, services
from conversations.models import Conversation

UPDATABLE = ("title", "context", "archived", "project", "pinned", "model", "temperature")


def conversation_response(conversation: Conversation, status: int = 200) -> Response:
    selectors.attach_last_messages([conversation])
    return Response(ConversationSerializer(conversation).data, status=status)


LIST_PARAMETERS = [
    OpenApiParameter(
        "archived",
        OpenApiTypes.BOOL,
        description="Only archived (true) or only active (false) conversations; both if absent.",
    ),
    OpenApiParameter("agent", OpenApiTypes.STR, description="Only this agent's (slug)."),
    OpenApiParameter("q", OpenApiTypes.STR, description="Title contains (case-insensitive)."),
    OpenApiParameter(
        "project",
        OpenApiTypes.STR,
        description="Only this project's (id), or `none`: only those in no project.",
    ),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50, max 200)."),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` of the last page."),
]


class ConversationListView(ConfabView):
    @extend_schema(
        operation_id="conversations_list",
        tags=["conversations"],
        summary="List conversations: pinned first, then newest activity first",
        parameters=LIST_PARAMETERS,
        responses={200: ConversationPageSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        page = selectors.conversation_page(
            user=request.user,
            cursor=inputs.parse_conversation_cursor(params.get("cursor")),
            size=inputs.parse_limit(params.get("limit")),
            filters={name: params.get(name) for name in ("archived", "agent", "q", "project")},
        )
        return Response(ConversationPageSerializer(page).data)

    @extend_schema(
        operation_id="conversations_create",
        tags=["conversations"],
        summary="Start a conversation with an agent",
        description="`context` fills the agent's template variables; unknown variables and "
        "missing required ones are a 400 naming each (`fields['context.<name>']`).",
        request=ConversationCreateSerializer,
        responses={
            201: ConversationSerializer,
            (404, "application/json"): OpenApiResponse(
                ErrorSerializer, description="NOT_FOUND: `project` is not one of yours."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(ConversationCreateSerializer, request.data)
        conversation = services.create_conversation(
            user=request.user,
            agent=data.get("agent"),
            context=data.get("context"),
            title=data.get("title", ""),
            project=data.get("project"),
        )
        return conversation_response(conversation, 201)


class ConversationDetailView(ConfabView):
    @extend_schema(
        operation_id="conversations_retrieve",
        tags=["conversations"],
        summary="Get a conversation",
        responses={200: ConversationSerializer},
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        return conversation_response(self.get_conversation(request, conversation_id))

    @extend_schema(
        operation_id="conversations_update",
        tags=["conversations"],
        summary="Change a conversation's title, context, archived state, project, pin, model "
        "or temperature",
        description="Only the fields sent are changed. `model` must be in GET /api/v1/models/ "
        "and allowed by the agent (`allowed_models`; 400 `fields.model`); `temperature` is "
        "0 to 2. null sets either back to the agent's.",
        request=ConversationUpdateSerializer,
        responses={200: ConversationSerializer},
    )
    def patch(self, request: Request, conversation_id: int) -> Response:
        conversation = self.get_conversation(request, conversation_id)
        data = validated(ConversationUpdateSerializer, request.data)
        services.update_conversation(
            conversation=conversation,
            **{name: data[name] for name in UPDATABLE if name in data},
        )
        return conversation_response(conversation)

    @extend_schema(
        operation_id="conversations_destroy",
        tags=["conversations"],
        summary="Delete a conversation and all its messages",
        responses={204: None},
    )
    def delete(self, request: Request, conversation_id: int) -> Response:
        services.delete_conversation(conversation=self.get_conversation(request, conversation_id))
        return Response(status=204)

    def get_conversation(self, request: Request, conversation_id: Any) -> Conversation:
        return selectors.get_conversation(user=request.user, conversation_id=conversation_id)


class ConversationClearView(ConfabView):
    @extend_schema(
        operation_id="conversations_clear",
        tags=["conversations"],
        summary="Delete every message of a conversation (a running turn is stopped)",
        request=None,
        responses={200: ConversationSerializer},
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.get_conversation(
            user=request.user, conversation_id=conversation_id
        )
        services.clear_conversation(conversation=conversation)
        return conversation_response(conversation)


BRANCH_CONFLICT = OpenApiResponse(
    ErrorSerializer,
    description="TURN_IN_PROGRESS: a turn is running (or messages are queued) in this "
    "conversation.",
)


class ConversationBranchView(ConfabView):
    @extend_schema(
        operation_id="conversations_branch",
        tags=["conversations"],
        summary="Switch to the branch of a message (a sibling of `< i/n >`)",
        description="The newest leaf under `message_id` (the message itself when nothing "
        "answers it) becomes the active leaf, and the path to it the active branch that "
        "history pages, the model's window and exports follow. Every device hears "
        "`conversation.branch_changed`. Returns the conversation (`active_leaf_id`); read "
        "the new branch with `messages_list`. 404 when the message is not in this "
        "conversation.",
        request=MessageChoiceSerializer,
        responses={
            200: ConversationSerializer,
            (409, "application/json"): BRANCH_CONFLICT,
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.get_conversation(
            user=request.user, conversation_id=conversation_id
        )
        data = validated(MessageChoiceSerializer, request.data)
        switched = services.switch_branch(conversation=conversation, message_id=data["message_id"])
        return conversation_response(switched)


class ConversationForkView(ConfabView):
    @extend_schema(
        operation_id="conversations_fork",
        tags=["conversations"],
        summary="Copy the active branch up to a message into a new conversation",
        description="A new conversation of the caller, with the same agent, context, model "
        "and project, holding copies of the active branch's messages from the first one "
        "up to `message_id` (ratings are not copied). 400 when the message is not on the "
        "active branch, 404 when it is not in this conversation.",
        request=MessageChoiceSerializer,
        responses={
            201: ConversationSerializer,
            (409, "application/json"): BRANCH_CONFLICT,
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.get_conversation(
            user=request.user, conversation_id=conversation_id
        )
        data = validated(MessageChoiceSerializer, request.data)
        fork = services.fork_conversation(conversation=conversation, message_id=data["message_id"])
        return conversation_response(fork, status=201)
