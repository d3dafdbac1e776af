"""Feedback writes: rate an AI reply (up/down, optional comment), or clear the rating."""

from __future__ import annotations

from typing import Any

from conversations.effects import record_message_change, write
from conversations.feedback.models import MessageFeedback, Rating
from conversations.models import ConversationMessage, MessageRole, MessageStatus
from conversations.payloads import feedback_payload
from core.errors import Conflict, ValidationFailed

MAX_COMMENT_CHARS = 2_000


class FeedbackNotAllowed(Conflict):
    code = "FEEDBACK_NOT_ALLOWED"
    default_detail = "Only a finished AI reply can be rated."


def _rating(value: Any) -> str:
    if value not in Rating.values:
        raise ValidationFailed.for_field("rating", "invalid", "rating must be up or down.")
    return value


def _comment(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed.for_field("comment", "invalid", "comment must be a string.")
    if len(value) > MAX_COMMENT_CHARS:
        raise ValidationFailed.for_field(
            "comment", "too_long", f"comment is longer than {MAX_COMMENT_CHARS} characters."
        )
    return value.strip()


@write
def set_feedback(
    *, user: Any, message: ConversationMessage, rating: Any, comment: Any = ""
) -> MessageFeedback:
    """Rate `message` (the caller checked it is the user's): one rating per user and
    message, replaced by a new one. Only AI replies that are no longer streaming: a
    human or tool message, or a reply still being written, is FEEDBACK_NOT_ALLOWED.
    Recorded in the owner's changes feed as the message's upsert (its payload carries
    the rating), so the user's other devices see it on their next sync. `message`'s
    payload shows the new rating at once."""
    rating, comment = _rating(rating), _comment(comment)
    if message.role != MessageRole.AI or message.status == MessageStatus.STREAMING:
        raise FeedbackNotAllowed()
    feedback, _ = MessageFeedback.objects.update_or_create(
        message=message, user=user, defaults={"rating": rating, "comment": comment}
    )
    message.user_feedback = feedback_payload(feedback)  # what its payload shows now
    record_message_change(message)
    return feedback


@write
def clear_feedback(*, user: Any, message: ConversationMessage) -> bool:
    """Remove the user's rating of `message` (its payload then shows none); whether
    there was one."""
    deleted, _ = MessageFeedback.objects.filter(message=message, user=user).delete()
    message.user_feedback = None
    if deleted:
        record_message_change(message)
    return bool(deleted)
