"""Sending the outbox: claim due rows, send each, record the outcome.

`deliver_due` runs every second in every server process (`conversations.background`).
A claim sets a lease on the rows it takes, inside a short transaction that skips rows
another sender holds (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at
a time). Sending happens outside any transaction; the outcome is written per row. A
sender that dies mid-send loses its claim when the lease ends, and the row is sent
again: delivery is at least once, under the same `event_id`.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from conversations.notifications import webhooks, webpush
from conversations.notifications.errors import DeliveryFailed
from conversations.notifications.models import (
    Notification,
    NotificationChannel,
    NotificationState,
)

logger = logging.getLogger(__name__)

BATCH = 20
LEASE_SECONDS = 60
MAX_BACKOFF_SECONDS = 3600


def deliver_due() -> int:
    """Send the notifications that are due; returns how many were delivered."""
    delivered = 0
    for notification in claim_due():
        if send_one(notification):
            delivered += 1
    return delivered


def claim_due(limit: int = BATCH) -> list[Notification]:
    """Take up to `limit` due rows for this sender (a lease of LEASE_SECONDS)."""
    now = timezone.now()
    due = Notification.objects.filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now),
        state=NotificationState.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at", "id")
    with transaction.atomic():
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True, of=("self",))
        rows = list(due.select_related("push_credential")[:limit])
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
            leased_until=now + timedelta(seconds=LEASE_SECONDS)
        )
    return rows


def send_one(notification: Notification) -> bool:
    """Send one claimed notification and record what happened; True when delivered."""
    try:
        if notification.channel == NotificationChannel.WEBHOOK:
            webhooks.send(notification)
        else:
            webpush.send(notification)
    except DeliveryFailed as failure:
        _failed(notification, str(failure), permanent=failure.permanent)
        return False
    except Exception as exc:
        logger.warning("Notification %s failed", notification.pk, exc_info=True)
        _failed(notification, type(exc).__name__, permanent=False)
        return False
    Notification.objects.filter(pk=notification.pk).update(
        state=NotificationState.DELIVERED,
        delivered_at=timezone.now(),
        attempts=notification.attempts + 1,
        leased_until=None,
        last_error="",
    )
    return True


def _failed(notification: Notification, reason: str, *, permanent: bool) -> None:
    attempts = notification.attempts + 1
    dead = permanent or attempts >= settings.CONFAB_NOTIFY_MAX_ATTEMPTS
    if dead:
        logger.warning(
            "Notification %s (%s) dead after %d attempt(s): %s",
            notification.pk,
            notification.channel,
            attempts,
            reason,
        )
    Notification.objects.filter(pk=notification.pk).update(
        state=NotificationState.DEAD if dead else NotificationState.PENDING,
        attempts=attempts,
        next_attempt_at=timezone.now() + timedelta(seconds=backoff(attempts)),
        leased_until=None,
        last_error=reason[:500],
    )


def backoff(attempts: int) -> float:
    """Seconds before the next try: doubling from CONFAB_NOTIFY_RETRY_SECONDS, with jitter."""
    base = settings.CONFAB_NOTIFY_RETRY_SECONDS * 2 ** (attempts - 1)
    return min(MAX_BACKOFF_SECONDS, base) * random.uniform(0.8, 1.2)
