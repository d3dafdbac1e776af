"""The shapes of accounts objects, the same on every surface."""

from __future__ import annotations

from typing import Any

from core.timestamps import iso_timestamp


def device_payload(token: Any, *, current_token_pk: Any = None) -> dict[str, Any]:
    """A signed-in device (one token); `current` says whether it made this request."""
    push = getattr(token, "push", None)  # a missing one-to-one raises AttributeError
    return {
        "id": str(token.public_id),
        "device_name": token.name,
        "created_at": iso_timestamp(token.created),
        "last_used_at": iso_timestamp(token.last_used_at),
        "expiry": iso_timestamp(token.expiry),
        "current": current_token_pk is not None and token.pk == current_token_pk,
        "push_platform": push.platform if push else None,
    }
