"""Webhooks, signed as Standard Webhooks (https://www.standardwebhooks.com/).

Each request carries `webhook-id` (the notification's event id, the same on every
retry: receivers de-duplicate by it), `webhook-timestamp` (seconds) and
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with
CONFAB_WEBHOOK_SECRET, a `whsec_…` secret). Any 2xx answer is delivery; anything else,
a timeout or a refused connection is retried with backoff.
"""

from __future__ import annotations

import json

import httpx
from django.conf import settings
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from conversations.notifications.errors import DeliveryFailed
from conversations.notifications.models import Notification


def signed_request(notification: Notification) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the webhook request for `notification`, signed now."""
    body = json.dumps(notification.payload, ensure_ascii=False, separators=(",", ":"))
    sent_at = timezone.now()
    signature = Webhook(settings.CONFAB_WEBHOOK_SECRET).sign(notification.event_id, sent_at, body)
    headers = {
        "content-type": "application/json",
        "webhook-id": notification.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    return body.encode(), headers


def send(notification: Notification) -> None:
    """POST the event to CONFAB_WEBHOOK_URL; DeliveryFailed unless it answers 2xx."""
    body, headers = signed_request(notification)
    try:
        response = httpx.post(
            settings.CONFAB_WEBHOOK_URL,
            content=body,
            headers=headers,
            timeout=settings.CONFAB_NOTIFY_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"HTTP {response.status_code}")
