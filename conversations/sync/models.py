"""Rows of the changes feed (registered by `conversations.models`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ChangeKind(models.TextChoices):
    CONVERSATION_UPSERTED = "conversation.upserted"
    CONVERSATION_DELETED = "conversation.deleted"
    CONVERSATION_CLEARED = "conversation.cleared"
    MESSAGE_UPSERTED = "message.upserted"
    MESSAGE_DELETED = "message.deleted"


class SyncCounter(models.Model):
    """A user's change counter. The row is updated (so locked) by every transaction that
    records a change for the user, which orders those transactions' commits."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)
    # Changes up to this number were compacted away: an older cursor cannot be served.
    compacted_through = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"changes of user {self.user_id}: {self.last_seq}"


class Change(models.Model):
    """One change of a user's data. Upserts name their object; the feed reads the object
    as it is now (a later change of the same object makes this one redundant, a later
    delete makes it empty: the reader skips it)."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=32, choices=ChangeKind.choices)
    # Ids that outlive their rows (tombstones): no constraint, nothing done on delete, so
    # deleting a conversation neither touches nor waits on the feed. Nullable only so
    # that reading a page joins the objects with LEFT JOINs (a gone object leaves the
    # change in the page); every change names its conversation.
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        null=True,
        db_index=False,
    )
    message = models.ForeignKey(
        "conversations.ConversationMessage",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        null=True,
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "seq"], name="change_user_seq"),
        ]
        indexes = [models.Index(fields=["created_at"], name="change_created")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} of user {self.user_id}"
