"""Reads of share links: the owner's list, and a shared conversation by its token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from conversations import tree
from conversations.files.models import UserFile
from conversations.inputs import ObjectId, parse_id_cursor, parse_limit, parse_object_id
from conversations.models import Conversation, ConversationMessage, MessageRole
from conversations.selectors.conversations import get_conversation
from conversations.selectors.messages import in_history_order
from conversations.shares import links
from conversations.shares.models import Share
from core.errors import NotFound

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def shares_of_conversation(*, user: Any, conversation_id: ObjectId) -> list[Share]:
    """The user's share links of their conversation, newest first (NotFound for another
    user's or a missing conversation)."""
    conversation = get_conversation(user=user, conversation_id=conversation_id)
    return list(Share.objects.filter(conversation=conversation).order_by("-id"))


def get_share(*, user: Any, conversation_id: ObjectId, share_id: ObjectId) -> Share:
    """One of the user's share links of their conversation, or NotFound."""
    share = Share.objects.filter(
        pk=parse_object_id(share_id),
        conversation_id=parse_object_id(conversation_id),
        user_id=getattr(user, "pk", None),
    ).first()
    if share is None:
        raise NotFound("Share not found.")
    return share


def share_by_token(token: Any) -> Share:
    """The live share `token` names, with its conversation and agent; NotFound for an
    unknown or revoked token (a revoked share no longer exists)."""
    if not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token):
        raise NotFound("Share not found.")
    share = Share.objects.select_related("conversation__agent").filter(token=token).first()
    if share is None:
        raise NotFound("Share not found.")
    return share


def shared_file(token: str) -> UserFile:
    """The file a share's signed file URL names, while the share exists and the file is
    its owner's; NotFound otherwise (forged, expired, revoked, deleted)."""
    named = links.shared_file_from_token(token)
    if named is None:
        raise NotFound()
    share_id, file_id = named
    file = UserFile.objects.filter(pk=file_id, user__shares__pk=share_id).first()
    if file is None:
        raise NotFound()
    return file


@dataclass
class SharedPage:
    """A page of a shared conversation, oldest first; `newer_cursor` continues it."""

    share: Share
    conversation: Conversation
    results: list[ConversationMessage]
    has_newer: bool

    @property
    def newer_cursor(self) -> int | None:
        return self.results[-1].id if self.has_newer and self.results else None


def shared_messages(share: Share) -> QuerySet[ConversationMessage]:
    """What a share shows: the branch that ends at the shared message (the active one
    when it was shared), never a later message, and no system messages (an agent's
    prompts stay private). A regenerate, an edit or a branch switch since then changes
    nothing of it; a message deleted since (clear) is gone from the share too. Each page
    walks the shared message's ancestors once (conversations/tree.py `path_to`)."""
    return (
        in_history_order(share.conversation_id, newest_first=False)
        .filter(id__in=tree.path_to(share.up_to_message_id))
        .exclude(role=MessageRole.SYSTEM)
    )


def shared_page(*, share: Share, after: Any = None, limit: Any = None) -> SharedPage:
    """A keyset page of the shared messages, oldest first: those after `after` (a
    message id), `limit` at most (the history pages' default and maximum)."""
    size = parse_limit(limit)
    after_id = parse_id_cursor(after, field="after")
    messages = shared_messages(share)
    if after_id is not None:
        messages = messages.filter(id__gt=after_id)
    rows = list(messages[: size + 1])
    return SharedPage(
        share=share,
        conversation=share.conversation,
        results=rows[:size],
        has_newer=len(rows) > size,
    )
