"""Reads of the changes feed: one page of a user's changes after a cursor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Subquery

from conversations.feedback.selectors import attach_feedback
from conversations.models import Conversation, ConversationMessage
from conversations.sync.models import Change, ChangeKind, SyncCounter
from core import replicas
from core.errors import ApplicationError


class SyncCursorExpired(ApplicationError):
    code = "SYNC_CURSOR_EXPIRED"
    type = "gone"
    status = 410
    default_detail = (
        "This cursor is older than the changes kept (CONFAB_SYNC_RETENTION_DAYS): load "
        "everything again, then sync from the cursor of an empty sync."
    )


@dataclass
class FeedChange:
    """One change as the feed gives it: the object as it is now for upserts."""

    seq: int
    kind: str
    conversation_id: int
    message_id: int | None
    conversation: Conversation | None = None
    message: ConversationMessage | None = None


@dataclass
class ChangePage:
    changes: list[FeedChange]
    cursor: int  # the seq to continue after
    has_more: bool


def current_seq(*, user: Any) -> int:
    """The number of the user's newest change (0 before the first)."""
    return (
        SyncCounter.objects.filter(user_id=user.pk).values_list("last_seq", flat=True).first() or 0
    )


def changes_page(*, user: Any, after: int | None, size: int) -> ChangePage:
    """Up to `size` changes of the user numbered after `after`, oldest first, in one query
    (the objects of upserts joined in). Upserts whose object is gone since are left out:
    the tombstone that removed it comes later in the feed.

    Without `after` (a first sync): no changes, and the cursor of the newest one; an
    app loads everything, then syncs from there."""
    # The feed may read from a replica, never older than the user's last write.
    with replicas.replica_reads(user.pk):
        return _changes_page(user=user, after=after, size=size)


def _changes_page(*, user: Any, after: int | None, size: int) -> ChangePage:
    if after is None:
        return ChangePage(changes=[], cursor=current_seq(user=user), has_more=False)
    counter = SyncCounter.objects.filter(user_id=user.pk)
    compacted = counter.values("compacted_through")
    rows = list(
        Change.objects.filter(user_id=user.pk, seq__gt=after)
        .annotate(compacted_through=Subquery(compacted))
        .select_related("conversation__agent", "message")
        .order_by("seq")[: size + 1]
    )
    # The compaction mark rides on the rows; an empty page asks on its own.
    compacted_through = (
        rows[0].compacted_through
        if rows
        else counter.values_list("compacted_through", flat=True).first()
    )
    if after < (compacted_through or 0):
        raise SyncCursorExpired()
    has_more = len(rows) > size
    rows = rows[:size]
    changes = []
    for row in rows:
        change = FeedChange(
            seq=row.seq,
            kind=row.kind,
            conversation_id=row.conversation_id,
            message_id=row.message_id,
        )
        if row.kind == ChangeKind.MESSAGE_UPSERTED:
            if row.message is None:
                continue
            change.message = row.message
        elif row.kind == ChangeKind.CONVERSATION_UPSERTED:
            if row.conversation is None or row.conversation.user_id != user.pk:
                continue
            change.conversation = row.conversation
        changes.append(change)
    attach_feedback([change.message for change in changes if change.message is not None])
    cursor = rows[-1].seq if rows else after
    return ChangePage(changes=changes, cursor=cursor, has_more=has_more)
