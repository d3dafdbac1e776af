"""A share link of a conversation (registered by `conversations.models`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Share(models.Model):
    """Whoever holds `token` may read the conversation's messages up to
    `up_to_message_id` (never later ones). Revoking deletes the row: its token and the
    file URLs signed for it answer 404 at once.

    The token is stored as it is (not hashed) so the owner can copy the link again from
    the list; it is 192 random bits, looked up through a unique index."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shares"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="shares"
    )
    token = models.CharField(max_length=64, unique=True)
    up_to_message_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["conversation", "-id"], name="share_conversation")]

    def __str__(self) -> str:
        return f"share {self.pk} of conversation {self.conversation_id}"
