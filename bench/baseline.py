"""The page-number baseline: what a plain DRF history endpoint would do.

`PageNumberPagination` runs `COUNT(*)` over the conversation and then
`OFFSET (page - 1) * size`, so its cost grows with the page's depth. The
serializer is a plain `ModelSerializer` with the same fields as Confab's
message shape. Mounted only by `bench.urls`, never in the product.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination

from api.rest.throttles import UserThrottle
from conversations import selectors
from conversations.models import ConversationMessage
from tests.support.shapes import MESSAGE_FIELDS

PAGE_SIZE = 50


class BaselineMessageSerializer(serializers.ModelSerializer):
    # Not a column: the files a message references, read from its content (the
    # baseline's history has none).
    attachments = serializers.SerializerMethodField()
    # The tree's fields (conversations/tree.py) as a linear history has them.
    parent_id = serializers.IntegerField(read_only=True, allow_null=True)
    siblings = serializers.SerializerMethodField()

    def get_attachments(self, message: ConversationMessage) -> list:
        return []

    def get_siblings(self, message: ConversationMessage) -> dict:
        return {"ids": [message.id], "index": 0}

    class Meta:
        model = ConversationMessage
        # The message shape the event tests pin down (tests/conversations/shapes.py).
        fields = list(MESSAGE_FIELDS)


class BaselinePagination(PageNumberPagination):
    page_size = PAGE_SIZE


def baseline_queryset(conversation: Any) -> QuerySet[ConversationMessage]:
    """The same rows in chronological order: page 1 is the oldest page."""
    return selectors.messages_of(conversation).order_by("id")


class BaselineMessageList(generics.ListAPIView):
    """GET /bench/baseline/conversations/<id>/messages/?page=N (owner-scoped)."""

    serializer_class = BaselineMessageSerializer
    pagination_class = BaselinePagination
    # The same per-user throttle as Confab's endpoints: both pay its cache round trip.
    throttle_classes = [UserThrottle]

    def get_queryset(self) -> QuerySet[ConversationMessage]:
        conversation = selectors.get_conversation(
            user=self.request.user, conversation_id=self.kwargs["conversation_id"]
        )
        return baseline_queryset(conversation)
