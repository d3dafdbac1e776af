"""Queueing notifications, inside the write that ends a reply."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import PushCredential, PushPlatform
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.notifications import webpush
from conversations.notifications.models import Notification, NotificationChannel
from conversations.payloads import message_payload
from conversations.presence import is_followed
from core.timestamps import iso_timestamp

PREVIEW_CHARS = 300


# What a reply's end is announced as. A reply paused for tool approval waits for the user:
# pushed like an ended reply (conversations.approvals).
_EVENT_TYPES = {
    MessageStatus.COMPLETE: "message.completed",
    MessageStatus.FAILED: "message.failed",
    MessageStatus.AWAITING_APPROVAL: "tool.approval_requested",
}


def queue_reply_ended(*, message: ConversationMessage, conversation: Conversation) -> int:
    """Queue the notifications of a reply that ended (complete or failed) or paused for
    the user's approval of its tool calls (`tool.approval_requested`); returns how many.

    Push goes to every device of the user with Web Push credentials, unless a live
    socket follows the conversation (the user is watching); the webhook, when
    configured, always gets the event. APNs and FCM devices are reached through the
    webhook (docs/clients.md): their credentials are listed in its payload.
    """
    if message.status not in _EVENT_TYPES:
        return 0
    event_type = _EVENT_TYPES[message.status]
    event_id = f"msg_{message.pk}_{message.status}"
    now = timezone.now()
    rows = []
    watching = is_followed(conversation.pk)
    if not watching and webpush.configured():
        push = _push_payload(event_type, message, conversation)
        for credential in PushCredential.objects.filter(
            user_id=conversation.user_id, platform=PushPlatform.WEBPUSH
        ).only("pk"):
            rows.append(
                Notification(
                    user_id=conversation.user_id,
                    channel=NotificationChannel.WEBPUSH,
                    push_credential=credential,
                    event_id=event_id,
                    event_type=event_type,
                    payload=push,
                    next_attempt_at=now,
                )
            )
    if settings.CONFAB_WEBHOOK_URL:
        rows.append(
            Notification(
                user_id=conversation.user_id,
                channel=NotificationChannel.WEBHOOK,
                event_id=event_id,
                event_type=event_type,
                payload=_webhook_payload(event_type, message, conversation, now, watching),
                next_attempt_at=now,
            )
        )
    Notification.objects.bulk_create(rows)
    return len(rows)


def _push_payload(
    event_type: str, message: ConversationMessage, conversation: Conversation
) -> dict[str, Any]:
    """What a device shows: small (Web Push carries at most 4 KB)."""
    return {
        "type": event_type,
        "conversation_id": conversation.pk,
        "conversation_title": conversation.title,
        "message_id": message.pk,
        "status": message.status,
        "text": message.text[:PREVIEW_CHARS],
    }


def _webhook_payload(
    event_type: str,
    message: ConversationMessage,
    conversation: Conversation,
    now: Any,
    watching: bool,
) -> dict[str, Any]:
    """A Standard Webhooks event: `type`, `timestamp` and `data`. `user_watching`: a live
    socket followed the conversation (a relay to APNs/FCM may then skip the push)."""
    return {
        "type": event_type,
        "timestamp": iso_timestamp(now),
        "data": {
            "user_id": conversation.user_id,
            "conversation": {"id": conversation.pk, "title": conversation.title},
            "message": message_payload(message),
            "user_watching": watching,
            "push_devices": [
                {"platform": platform, **data}
                for platform, data in PushCredential.objects.filter(
                    user_id=conversation.user_id,
                    platform__in=[PushPlatform.APNS, PushPlatform.FCM],
                ).values_list("platform", "data")
            ],
        },
    }
