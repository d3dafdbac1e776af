"""Reads of accounts: the signed-in devices (tokens) of a user."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import AccessToken


def devices_of(user: Any) -> QuerySet[AccessToken]:
    """The user's live tokens, newest first, with their push credentials."""
    now = timezone.now()
    return (
        AccessToken.objects.filter(user_id=user.pk)
        .filter(Q(expiry__isnull=True) | Q(expiry__gte=now))
        .select_related("push")
        .order_by("-created")
    )
