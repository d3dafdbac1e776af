"""Revoked credentials end their open sockets, on every process, within seconds.

REST and GraphQL over HTTP authenticate each request, so a revoked token is
refused at once; a websocket authenticates once, at its handshake (or
connection_init), and would otherwise keep serving its user for as long as it
stays open. Three mechanisms close that gap (docs/reliability.md, issue 14.2):

- every socket joins the channel-layer group of the token it was opened with
  (`token_group`); the revoking functions of `accounts.services` send
  `REVOKED_MESSAGE_TYPE` to those groups once their transaction commits, and
  each socket, wherever it runs, closes 4401 (`conversations.close_codes`);
- a socket re-checks its token before every frame that does work (one indexed
  query), so no frame is served after the revocation committed, even one that
  raced ahead of the group message;
- a per-process sweep (`conversations.live`) re-checks every open socket's
  token every CONFAB_WS_AUTH_CHECK_SECONDS in one query, for what sends no
  message: expiry, a user deactivated or deleted without a save (a bulk
  update, SQL), a lost layer message.

A user saved with `is_active=False` (the admin, a command) is announced like a
revocation of all their tokens (`user_saved`, connected in accounts/apps.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AccessToken

logger = logging.getLogger(__name__)

REVOKED_MESSAGE_TYPE = "confab.revoked"
# One query of the sweep checks at most this many tokens (an IN list).
CHECK_CHUNK = 500


def token_group(public_id: Any) -> str:
    """The channel-layer group of the sockets opened with one token."""
    return f"confab.token.{uuid.UUID(str(public_id)).hex}"


def _live_tokens() -> Any:
    return AccessToken.objects.filter(user__is_active=True).filter(
        Q(expiry__isnull=True) | Q(expiry__gt=timezone.now())
    )


def valid_token_ids(public_ids: Iterable[Any]) -> set[uuid.UUID]:
    """Which of these tokens still authenticate: not deleted, not expired, user active."""
    ids = [uuid.UUID(str(value)) for value in public_ids]
    valid: set[uuid.UUID] = set()
    for start in range(0, len(ids), CHECK_CHUNK):
        chunk = ids[start : start + CHECK_CHUNK]
        valid.update(_live_tokens().filter(public_id__in=chunk).values_list("public_id", flat=True))
    return valid


def token_is_valid(public_id: Any) -> bool:
    """Whether one token still authenticates (the check before a socket's frame)."""
    return _live_tokens().filter(public_id=public_id).exists()


async def abroadcast_revoked(public_ids: Iterable[Any]) -> None:
    """Tell every socket opened with these tokens, on every process, to close 4401."""
    layer = get_channel_layer()
    if layer is None:
        return
    for public_id in public_ids:
        try:
            await layer.group_send(token_group(public_id), {"type": REVOKED_MESSAGE_TYPE})
        except Exception:
            logger.warning("Could not announce a revoked token to its sockets", exc_info=True)
            return


def user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """post_save of the user model: an inactive user's sockets close at once."""
    if created or getattr(instance, "is_active", True):
        return
    revoked_on_commit(
        AccessToken.objects.filter(user_id=instance.pk).values_list("public_id", flat=True)
    )


def revoked_on_commit(public_ids: Iterable[Any]) -> None:
    """Announce the revocation once the surrounding transaction commits (a rolled-back
    revocation revoked nothing)."""
    ids = [str(value) for value in public_ids]
    if ids:
        transaction.on_commit(lambda: async_to_sync(abroadcast_revoked)(ids))
