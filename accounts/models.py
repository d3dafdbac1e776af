"""API access tokens (one per signed-in device) and the push credentials of a device."""

import uuid

from django.conf import settings
from django.db import models
from knox.models import AbstractAuthToken


class AccessToken(AbstractAuthToken):
    """One bearer token per device or client; only its digest is stored."""

    name = models.CharField(max_length=100, blank=True, help_text="Device or client name.")
    # The id clients see (the list of signed-in devices): the primary key is the token's
    # digest, which is not for showing.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # When the token last authenticated a request, to a minute
    # (accounts.authentication.LAST_USED_RESOLUTION): not a write per request.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        swappable = "KNOX_TOKEN_MODEL"
        ordering = ["-created"]
        # The table the model had when it lived in the `api` app: moving the model
        # between apps is a change of Django's state only (accounts/migrations/0001).
        db_table = "api_accesstoken"

    def __str__(self) -> str:
        return f"{self.user} · {self.name or 'token'} · {self.token_key}"


class PushPlatform(models.TextChoices):
    WEBPUSH = "webpush", "Web Push"
    APNS = "apns", "Apple Push Notification service"
    FCM = "fcm", "Firebase Cloud Messaging"


class PushCredential(models.Model):
    """Where to push a device's notifications: registered on its token, so signing the
    device out removes it."""

    token = models.OneToOneField(AccessToken, on_delete=models.CASCADE, related_name="push")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_credentials"
    )
    platform = models.CharField(max_length=16, choices=PushPlatform.choices)
    # webpush: the browser's PushSubscription {"endpoint", "keys": {"p256dh", "auth"}};
    # apns / fcm: {"token"}.
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.platform} push of {self.user_id}"
