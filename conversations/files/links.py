"""Signed, expiring URLs for a file's bytes (for `<img src>`, which cannot send a token),
and the file object of every surface.

A signed URL names the file and an expiry, signed with SECRET_KEY
(`django.core.signing`, its own salt). The expiry is rounded up to a whole window
(CONFAB_FILE_URL_TTL / 4), so one file's URL is the same string for a while: pages
and events built a second apart agree, and browsers cache the image. A URL lives
between 3/4 and 5/4 of CONFAB_FILE_URL_TTL.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

from django.conf import settings
from django.core import signing

SALT = "confab.files.signed-url"
SIGNED_PATH = "/api/v1/files/signed/"


def _window() -> int:
    return max(1, settings.CONFAB_FILE_URL_TTL // 4)


def expiry(*, now: float | None = None) -> int:
    """When a URL signed now expires: CONFAB_FILE_URL_TTL ahead, rounded up to a window."""
    now = time.time() if now is None else now
    window = _window()
    return int(math.ceil((now + settings.CONFAB_FILE_URL_TTL) / window) * window)


def signed_url(file_id: int, *, now: float | None = None) -> str:
    """A path that serves file `file_id`'s bytes to whoever holds it, until it expires."""
    return _signed_path(int(file_id), expiry(now=now), settings.SECRET_KEY)


@functools.lru_cache(maxsize=8192)
def _signed_path(file_id: int, expires: int, secret: str) -> str:
    # Cached: a history page signs every attachment on it, and the same URL holds for a
    # whole window. `secret` is part of the key so that a changed SECRET_KEY re-signs.
    # A plain Signer: `signing.dumps` would add a timestamp of its own, and the URL
    # would change every second.
    token = _signer(secret).sign_object([file_id, expires])
    return f"{SIGNED_PATH}{token}/"


@functools.lru_cache(maxsize=4)
def _signer(secret: str) -> signing.Signer:
    return signing.Signer(key=secret, salt=SALT)


def signed_cache_seconds() -> int:
    """How long a browser may cache bytes fetched through a signed URL."""
    return _window()


def file_from_token(token: str, *, now: float | None = None) -> int | None:
    """The file id a signed URL's token names, or None when forged, damaged or expired."""
    if len(token) > 200:
        return None
    try:
        file_id, expires = _signer(settings.SECRET_KEY).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(file_id, int) or not isinstance(expires, int):
        return None
    if expires < (time.time() if now is None else now):
        return None
    return file_id


def snapshot(file: Any) -> dict[str, Any]:
    """What a message keeps of a file it references (no URL: that is signed when shown)."""
    from core.timestamps import iso_timestamp

    return {
        "id": file.id,
        "name": file.name,
        "content_type": file.content_type,
        "size": file.size,
        "sha256": file.sha256,
        "width": file.width,
        "height": file.height,
        "created_at": iso_timestamp(file.created_at),
    }


def file_payload(file: Any) -> dict[str, Any]:
    """The file object of every surface: the documented fields, `url` signed now."""
    return with_url(snapshot(file))


def with_url(fields: dict[str, Any]) -> dict[str, Any]:
    """A stored snapshot with its signed `url` (the order of the documented shape)."""
    return {
        "id": fields["id"],
        "name": fields["name"],
        "content_type": fields["content_type"],
        "size": fields["size"],
        "sha256": fields["sha256"],
        "width": fields.get("width"),
        "height": fields.get("height"),
        "url": signed_url(fields["id"]),
        "created_at": fields.get("created_at"),
    }
