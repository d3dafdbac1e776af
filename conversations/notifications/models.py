"""The outbox of notifications (registered by `conversations.models`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class NotificationChannel(models.TextChoices):
    WEBPUSH = "webpush", "Web Push"
    WEBHOOK = "webhook", "Webhook"


class NotificationState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead (gave up)"


class Notification(models.Model):
    """One message to one destination, sent at least once."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=16, choices=NotificationChannel.choices)
    # The device to push to; a device signed out before delivery takes its rows along.
    push_credential = models.ForeignKey(
        "accounts.PushCredential", on_delete=models.CASCADE, null=True, blank=True
    )
    # The same across retries: webhook receivers de-duplicate by it (`webhook-id`).
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    state = models.CharField(
        max_length=16, choices=NotificationState.choices, default=NotificationState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A claimed row is left alone until then (a sender that died mid-send loses its claim).
    leased_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notification_due",
                condition=Q(state="pending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id", "channel", "push_credential"],
                name="notification_once_per_destination",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event_type} #{self.pk} ({self.state})"
