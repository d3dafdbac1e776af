"""File URLs of a shared conversation: signed for the share, so they die with it.

A shared page never carries a file's ordinary signed URL (`conversations.files.links`):
that one would keep working until it expires after the share is revoked. Its files
get URLs that name the share, the file and an expiry, signed with SECRET_KEY under
their own salt; the download checks that the share still exists and that the file is
its owner's. Expiry windows are the ordinary file URLs' (CONFAB_FILE_URL_TTL).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from django.conf import settings
from django.core import signing

from conversations.files.links import expiry

SALT = "confab.shares.file-url"
SHARED_FILE_PATH = "/api/v1/shared/files/"


def shared_file_url(share_id: int, file_id: int, *, now: float | None = None) -> str:
    """The path that serves file `file_id` to readers of share `share_id`."""
    return _signed_path(int(share_id), int(file_id), expiry(now=now), settings.SECRET_KEY)


@functools.lru_cache(maxsize=8192)
def _signed_path(share_id: int, file_id: int, expires: int, secret: str) -> str:
    token = _signer(secret).sign_object([share_id, file_id, expires])
    return f"{SHARED_FILE_PATH}{token}/"


@functools.lru_cache(maxsize=4)
def _signer(secret: str) -> signing.Signer:
    return signing.Signer(key=secret, salt=SALT)


def shared_file_from_token(token: str, *, now: float | None = None) -> tuple[int, int] | None:
    """(share id, file id) a shared file URL's token names, or None when forged,
    damaged or expired (whether the share still exists is the caller's check)."""
    if len(token) > 200:
        return None
    try:
        share_id, file_id, expires = _signer(settings.SECRET_KEY).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not all(isinstance(value, int) for value in (share_id, file_id, expires)):
        return None
    if expires < (time.time() if now is None else now):
        return None
    return share_id, file_id


def with_shared_urls(attachments: list[dict[str, Any]], share_id: int) -> list[dict[str, Any]]:
    """File objects whose `url` is the share's own."""
    return [{**file, "url": shared_file_url(share_id, file["id"])} for file in attachments]
