"""Response shapes of the share links (`conversations.shares.payloads`)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.rest.serializers import MessageSerializer, OutputSerializer
from conversations.shares.payloads import share_payload, shared_message_payload


class ShareSerializer(OutputSerializer):
    """A share link: whoever opens `url` reads the conversation up to
    `up_to_message_id` (later messages never appear), until the link is revoked."""

    id = serializers.IntegerField(read_only=True)
    conversation = serializers.IntegerField(read_only=True)
    token = serializers.CharField(
        read_only=True, help_text="192 random bits: the link's only permission."
    )
    url = serializers.CharField(read_only=True, help_text="The web app's page of the share.")
    up_to_message_id = serializers.IntegerField(
        read_only=True, help_text="The newest message the share shows."
    )
    created_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, share: Any) -> dict[str, Any]:
        return share_payload(share, origin=self.context.get("origin", ""))


class ShareListSerializer(OutputSerializer):
    results = ShareSerializer(many=True, read_only=True)


class SharedMessageSerializer(MessageSerializer):
    """A message as a share's reader sees it: `feedback` is always null, and each
    attachment's `url` is signed for the share (it stops working when it is revoked)."""


class SharedConversationSerializer(OutputSerializer):
    """A page of a shared conversation, oldest first; the next page: `after=<newer_cursor>`."""

    title = serializers.CharField(read_only=True, allow_blank=True)
    agent = serializers.CharField(read_only=True, help_text="The agent's display name.")
    up_to_message_id = serializers.IntegerField(read_only=True)
    shared_at = serializers.DateTimeField(read_only=True)
    results = SharedMessageSerializer(many=True, read_only=True)
    has_newer = serializers.BooleanField(read_only=True)
    newer_cursor = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Pass as `after` for the next page."
    )

    def to_representation(self, page: Any) -> dict[str, Any]:
        from core.timestamps import iso_timestamp

        return {
            "title": page.conversation.title,
            "agent": page.conversation.agent.name,
            "up_to_message_id": page.share.up_to_message_id,
            "shared_at": iso_timestamp(page.share.created_at),
            "results": [shared_message_payload(m, page.share) for m in page.results],
            "has_newer": page.has_newer,
            "newer_cursor": page.newer_cursor,
        }
