"""A user's rating of an AI reply (registered by `conversations.models`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Rating(models.TextChoices):
    UP = "up", "Thumbs up"
    DOWN = "down", "Thumbs down"


class MessageFeedback(models.Model):
    """One user's rating of one AI message. Its own table, not columns on the message:
    the message row is the hot history page and its shape is fixed (`MessageRow`)."""

    message = models.ForeignKey(
        "conversations.ConversationMessage", on_delete=models.CASCADE, related_name="feedback"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="message_feedback"
    )
    rating = models.CharField(max_length=8, choices=Rating.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="feedback_one_per_user")
        ]
        indexes = [models.Index(fields=["rating", "-updated_at"], name="feedback_rating")]

    def __str__(self) -> str:
        return f"{self.rating} on message {self.message_id}"
