"""API access tokens: knox tokens (hashed at rest, expiring) with a device name."""

from django.db import models
from knox.models import AbstractAuthToken


class AccessToken(AbstractAuthToken):
    """One bearer token per device or client; only its digest is stored."""

    name = models.CharField(max_length=100, blank=True, help_text="Device or client name.")

    class Meta:
        swappable = "KNOX_TOKEN_MODEL"
        ordering = ["-created"]
        # The table the model had when it lived in the `api` app: moving the model
        # between apps is a change of Django's state only (accounts/migrations/0001).
        db_table = "api_accesstoken"

    def __str__(self) -> str:
        return f"{self.user} · {self.name or 'token'} · {self.token_key}"
