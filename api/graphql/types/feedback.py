"""The owner's rating of an AI reply (`payloads.feedback_payload`) and its mutations'
payloads."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from django.utils.dateparse import parse_datetime

from conversations.feedback.models import Rating

FeedbackRating = strawberry.enum(
    Enum("FeedbackRating", [(choice.name, choice.value) for choice in Rating]),
    description="Thumbs UP or DOWN.",
)


@strawberry.type(description="The user's rating of an AI reply.")
class Feedback:
    rating: FeedbackRating  # type: ignore[valid-type]
    comment: str
    updated_at: datetime

    @classmethod
    def from_payload(cls, payload: dict[str, Any] | None) -> Feedback | None:
        if payload is None:
            return None
        return cls(
            rating=FeedbackRating(payload["rating"]),
            comment=payload["comment"],
            updated_at=parse_datetime(payload["updated_at"]),  # type: ignore[arg-type]
        )
