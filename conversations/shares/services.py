"""Share-link writes: share a conversation up to its newest message, revoke a share."""

from __future__ import annotations

import secrets
from typing import Any

from conversations.effects import write
from conversations.models import Conversation
from conversations.shares.models import Share
from core.errors import Conflict

# 24 random bytes: 192 bits, 32 URL-safe characters.
TOKEN_BYTES = 24
MAX_SHARES_PER_CONVERSATION = 50


class NothingToShare(Conflict):
    code = "NOTHING_TO_SHARE"
    default_detail = "The conversation has no messages to share."


class ShareLimitReached(Conflict):
    code = "SHARE_LIMIT_REACHED"
    default_detail = (
        f"A conversation has at most {MAX_SHARES_PER_CONVERSATION} share links: revoke one."
    )


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


@write
def create_share(*, user: Any, conversation: Conversation) -> Share:
    """A new share link of `conversation` (the caller checked it is the user's) that
    shows its messages up to the newest one now, never a later one. A conversation
    without messages is NOTHING_TO_SHARE; one with MAX_SHARES_PER_CONVERSATION links
    is SHARE_LIMIT_REACHED (counted under the conversation's row lock: two requests at
    once cannot both take the last link)."""
    # The lock and the active branch's newest message (its leaf) in one statement.
    newest = (
        Conversation.objects.select_for_update()
        .filter(pk=conversation.pk)
        .values_list("active_leaf_id", flat=True)
        .first()
    )
    if newest is None:
        raise NothingToShare()
    if Share.objects.filter(conversation=conversation).count() >= MAX_SHARES_PER_CONVERSATION:
        raise ShareLimitReached()
    return Share.objects.create(
        user=user, conversation=conversation, token=new_token(), up_to_message_id=newest
    )


@write
def revoke_share(*, share: Share) -> None:
    """Delete the share: its page, its API read and its file URLs answer 404 from now."""
    share.delete()
