"""`/api/v1/sync/`: the changes feed (what changed since a cursor)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import (
    ErrorSerializer,
    LiveConversationSerializer,
    MessageSerializer,
    OutputSerializer,
)
from api.rest.views.base import ConfabView
from conversations import inputs
from conversations.payloads import change_payload
from conversations.sync import selectors as sync_selectors
from conversations.sync.models import ChangeKind


def _kind(kind: ChangeKind) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[kind.value], read_only=True)


class ConversationUpsertedSerializer(OutputSerializer):
    """A conversation was created or changed: its state now."""

    type = _kind(ChangeKind.CONVERSATION_UPSERTED)
    conversation = LiveConversationSerializer(read_only=True)


class ConversationGoneSerializer(OutputSerializer):
    """A conversation was deleted (drop it and its messages) or cleared (drop its
    messages; its new state follows as `conversation.upserted`)."""

    type = serializers.ChoiceField(
        choices=[ChangeKind.CONVERSATION_DELETED.value, ChangeKind.CONVERSATION_CLEARED.value],
        read_only=True,
    )
    id = serializers.IntegerField(read_only=True, help_text="The conversation's id.")


class MessageUpsertedSerializer(OutputSerializer):
    """A message was created or ended (complete, failed, cancelled): its state now."""

    type = _kind(ChangeKind.MESSAGE_UPSERTED)
    message = MessageSerializer(read_only=True)


class MessageDeletedSerializer(OutputSerializer):
    """A message was deleted."""

    type = _kind(ChangeKind.MESSAGE_DELETED)
    id = serializers.IntegerField(read_only=True, help_text="The message's id.")
    conversation_id = serializers.IntegerField(read_only=True)


CHANGE = PolymorphicProxySerializer(
    component_name="Change",
    serializers={
        ChangeKind.CONVERSATION_UPSERTED.value: ConversationUpsertedSerializer,
        ChangeKind.CONVERSATION_DELETED.value: ConversationGoneSerializer,
        ChangeKind.CONVERSATION_CLEARED.value: ConversationGoneSerializer,
        ChangeKind.MESSAGE_UPSERTED.value: MessageUpsertedSerializer,
        ChangeKind.MESSAGE_DELETED.value: MessageDeletedSerializer,
    },
    resource_type_field_name="type",
    many=True,
)


class ChangePageSerializer(OutputSerializer):
    """Changes in the order they happened, and where to continue."""

    changes = CHANGE
    cursor = serializers.CharField(
        read_only=True, help_text="Pass as `cursor` next time (opaque; store it)."
    )
    has_more = serializers.BooleanField(
        read_only=True, help_text="More changes wait: ask again at once with `cursor`."
    )

    def to_representation(self, page: Any) -> dict[str, Any]:
        return {
            "changes": [change_payload(change) for change in page.changes],
            "cursor": inputs.encode_sync_cursor(page.cursor),
            "has_more": page.has_more,
        }


class SyncView(ConfabView):
    @extend_schema(
        operation_id="sync",
        tags=["sync"],
        summary="What changed since a cursor (the changes feed)",
        description=(
            "Without `cursor`: no changes and the current cursor (load everything, then sync "
            "from there). With it: the changes after it, oldest first; ask again while "
            "`has_more`. Replaying the changes in order (upsert = replace the object by id, "
            "deleted = drop it, cleared = drop the conversation's messages) gives the "
            "server's state. A cursor older than CONFAB_SYNC_RETENTION_DAYS answers 410 "
            "`SYNC_CURSOR_EXPIRED`: load everything again."
        ),
        parameters=[
            OpenApiParameter("cursor", OpenApiTypes.STR, description="`cursor` of the last sync."),
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description="Changes per page (default 100, at most CONFAB_SYNC_MAX_PAGE_SIZE).",
            ),
        ],
        responses={
            200: ChangePageSerializer,
            (410, "application/json"): OpenApiResponse(
                ErrorSerializer, description="SYNC_CURSOR_EXPIRED: load everything again."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        after, size = inputs.parse_sync_request(
            cursor=params.get("cursor"), limit=params.get("limit")
        )
        page = sync_selectors.changes_page(user=request.user, after=after, size=size)
        return Response(ChangePageSerializer(page).data)
