"""API access tokens: knox tokens (hashed at rest, expiring) with a device name."""

from django.db import models
from knox.models import AbstractAuthToken


class AccessToken(AbstractAuthToken):
    """One bearer token per device or client; only its digest is stored."""

    name = models.CharField(max_length=100, blank=True, help_text="Device or client name.")

    class Meta:
        swappable = "KNOX_TOKEN_MODEL"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.user} · {self.name or 'token'} · {self.token_key}"
