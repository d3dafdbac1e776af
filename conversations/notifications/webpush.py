"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), via pywebpush.

The payload is encrypted for the browser's subscription keys, so the push service in
between cannot read it. A subscription the push service says is gone (404, 410) is
removed and its notification dead-lettered; other failures are retried.

Endpoints must be https and public: a user chooses the endpoint, and the server
would otherwise POST wherever it points (another service on its network).
CONFAB_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS lifts that for tests and closed networks.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from urllib.parse import urlsplit

from django.conf import settings
from pywebpush import WebPushException, webpush

from accounts.models import PushCredential
from conversations.notifications.errors import DeliveryFailed
from conversations.notifications.models import Notification

TTL_SECONDS = 24 * 3600
GONE = {404, 410}


def configured() -> bool:
    """Whether this server can sign Web Push requests (a VAPID key is set)."""
    return bool(settings.CONFAB_VAPID_PRIVATE_KEY)


def check_endpoint(endpoint: str) -> None:
    """DeliveryFailed (permanent) for an endpoint the server must not call."""
    if settings.CONFAB_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS:
        return
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise DeliveryFailed("push endpoints must be https", permanent=True)
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError as exc:
        raise DeliveryFailed("push endpoint host does not resolve") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise DeliveryFailed("push endpoint is not a public address", permanent=True)


def send(notification: Notification) -> None:
    """Push the notification to its device; DeliveryFailed when the push service refuses."""
    credential = notification.push_credential
    if credential is None or not configured():
        raise DeliveryFailed("no push credential or VAPID key", permanent=True)
    check_endpoint(credential.data["endpoint"])
    try:
        webpush(
            subscription_info=credential.data,
            data=json.dumps(notification.payload, ensure_ascii=False),
            vapid_private_key=settings.CONFAB_VAPID_PRIVATE_KEY,
            vapid_claims={"sub": settings.CONFAB_VAPID_SUBJECT},
            ttl=TTL_SECONDS,
            timeout=settings.CONFAB_NOTIFY_TIMEOUT,
            headers={"Topic": f"conversation-{notification.payload['conversation_id']}"},
        )
    except WebPushException as exc:
        status = getattr(exc.response, "status_code", None)
        if status in GONE:
            PushCredential.objects.filter(pk=credential.pk).delete()
            raise DeliveryFailed(f"subscription gone (HTTP {status})", permanent=True) from exc
        raise DeliveryFailed(f"push service answered {status}") from exc
