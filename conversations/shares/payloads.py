"""The share objects of every surface: a share link, and a shared conversation's page."""

from __future__ import annotations

from typing import Any

from conversations.payloads import message_payload
from conversations.shares.links import with_shared_urls
from conversations.shares.models import Share
from core.timestamps import iso_timestamp

PAGE_PATH = "/s/"


def share_path(share: Share) -> str:
    """The web app's page of a share (the surfaces make it absolute)."""
    return f"{PAGE_PATH}{share.token}"


def share_payload(share: Share, *, origin: str = "") -> dict[str, Any]:
    """A share link as its owner sees it; `origin` (`https://host`) makes `url` absolute."""
    return {
        "id": share.pk,
        "conversation": share.conversation_id,
        "token": share.token,
        "url": f"{origin}{share_path(share)}",
        "up_to_message_id": share.up_to_message_id,
        "created_at": iso_timestamp(share.created_at),
    }


def shared_message_payload(message: Any, share: Share) -> dict[str, Any]:
    """The message shape, as a reader of the share sees it: no rating (the owner's
    own), and file URLs signed for the share instead of the ordinary ones."""
    payload = message_payload(message, feedback=None)
    payload["attachments"] = with_shared_urls(payload["attachments"], share.pk)
    return payload
