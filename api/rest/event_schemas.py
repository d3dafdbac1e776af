"""The live events (`conversations.events`) as OpenAPI schemas: one `ConversationEvent`
discriminated by `type`, the `data:` of every SSE event (turn streams and
`GET /api/v1/conversations/{id}/events/`). Schema only: the events are written by
`conversations.events` and sent unchanged."""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from api.rest.serializers import (
    LiveConversationSerializer,
    MessageErrorSerializer,
    MessageSerializer,
    OutputSerializer,
    ToolApprovalSerializer,
)
from conversations.events import EventType


def _types(*kinds: EventType) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[str(kind) for kind in kinds], read_only=True)


class MessageEventSerializer(OutputSerializer):
    """A message was stored (`message.created`: a human message, a queued one, or an AI reply
    starting as `streaming`) or a reply ended (`message.completed`: complete or
    cancelled). A stored message sent on resume is the last of these it would have had."""

    type = _types(EventType.MESSAGE_CREATED, EventType.MESSAGE_COMPLETED)
    conversation_id = serializers.IntegerField(read_only=True)
    message = MessageSerializer(read_only=True)


class MessageFailedEventSerializer(OutputSerializer):
    """A reply failed; the message keeps its partial text."""

    type = _types(EventType.MESSAGE_FAILED)
    conversation_id = serializers.IntegerField(read_only=True)
    message = MessageSerializer(read_only=True)
    error = MessageErrorSerializer(read_only=True)


class MessageDeltaEventSerializer(OutputSerializer):
    """More text of a streaming reply: `delta` goes at `offset` of the message's text (on
    these streams it always starts where the text the client holds ends)."""

    type = _types(EventType.MESSAGE_DELTA)
    conversation_id = serializers.IntegerField(read_only=True)
    message_id = serializers.IntegerField(read_only=True)
    index = serializers.IntegerField(read_only=True, help_text="Counts the message's deltas.")
    offset = serializers.IntegerField(read_only=True)
    delta = serializers.CharField(read_only=True)


class MessagesDeletedEventSerializer(OutputSerializer):
    """Messages were removed (not sent any more: a regenerate keeps the old reply)."""

    type = _types(EventType.MESSAGE_DELETED)
    conversation_id = serializers.IntegerField(read_only=True)
    message_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)


class BranchChangedEventSerializer(OutputSerializer):
    """The active branch changed (a regenerate, an edit, a branch switch on any device):
    its messages are the path to `active_leaf_id`; re-read the history page."""

    type = _types(EventType.CONVERSATION_BRANCH_CHANGED)
    conversation_id = serializers.IntegerField(read_only=True)
    active_leaf_id = serializers.IntegerField(read_only=True, allow_null=True)
    conversation = LiveConversationSerializer(read_only=True)


class ConversationChangedEventSerializer(OutputSerializer):
    """The conversation was created, changed (title, turn lock, counters), cleared or
    deleted (the stream ends after `conversation.deleted`)."""

    type = _types(
        EventType.CONVERSATION_CREATED,
        EventType.CONVERSATION_UPDATED,
        EventType.CONVERSATION_CLEARED,
        EventType.CONVERSATION_DELETED,
    )
    conversation_id = serializers.IntegerField(read_only=True)
    conversation = LiveConversationSerializer(read_only=True)


class ToolApprovalRequestedEventSerializer(OutputSerializer):
    """A turn paused: its AI message (`awaiting_approval`) has tool calls that run only
    once the user approves them (`POST .../tool-calls/{call_id}/approve/` or `deny/`).
    A turn stream ends with this event."""

    type = _types(EventType.TOOL_APPROVAL_REQUESTED)
    conversation_id = serializers.IntegerField(read_only=True)
    message_id = serializers.IntegerField(read_only=True)
    turn_id = serializers.UUIDField(read_only=True)
    calls = ToolApprovalSerializer(many=True, read_only=True)


class ToolApprovalDecidedEventSerializer(OutputSerializer):
    """One waiting tool call was approved or denied (by the user on any device, by the
    timeout, or by a cancel)."""

    type = _types(EventType.TOOL_APPROVAL_DECIDED)
    conversation_id = serializers.IntegerField(read_only=True)
    message_id = serializers.IntegerField(read_only=True)
    turn_id = serializers.UUIDField(read_only=True)
    call = ToolApprovalSerializer(read_only=True)


CONVERSATION_EVENT = PolymorphicProxySerializer(
    component_name="ConversationEvent",
    serializers={
        str(EventType.MESSAGE_CREATED): MessageEventSerializer,
        str(EventType.MESSAGE_COMPLETED): MessageEventSerializer,
        str(EventType.MESSAGE_FAILED): MessageFailedEventSerializer,
        str(EventType.MESSAGE_DELTA): MessageDeltaEventSerializer,
        str(EventType.MESSAGE_DELETED): MessagesDeletedEventSerializer,
        str(EventType.CONVERSATION_BRANCH_CHANGED): BranchChangedEventSerializer,
        str(EventType.CONVERSATION_CREATED): ConversationChangedEventSerializer,
        str(EventType.CONVERSATION_UPDATED): ConversationChangedEventSerializer,
        str(EventType.CONVERSATION_CLEARED): ConversationChangedEventSerializer,
        str(EventType.CONVERSATION_DELETED): ConversationChangedEventSerializer,
        str(EventType.TOOL_APPROVAL_REQUESTED): ToolApprovalRequestedEventSerializer,
        str(EventType.TOOL_APPROVAL_DECIDED): ToolApprovalDecidedEventSerializer,
    },
    resource_type_field_name="type",
)
