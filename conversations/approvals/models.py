"""A tool call waiting for the user's approval (registered by `conversations.models`).

One row per call that needs approval, written when the turn pauses; the turn itself
keeps nothing in memory while it waits: the AI message (status `awaiting_approval`)
holds the calls, these rows hold the decisions, and whichever process records the last
decision resumes the turn from them (`conversations.approvals.services`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"


class DecidedBy(models.TextChoices):
    """Who decided: the user, the timeout, or a cancel of the turn."""

    USER = "user", "User"
    TIMEOUT = "timeout", "Timeout"
    CANCEL = "cancel", "Cancel"


class ToolApproval(models.Model):
    """One tool call of a paused turn and the user's decision on it."""

    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="tool_approvals"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tool_approvals"
    )
    # The AI message holding the call; deleted with it (clear, regenerate).
    message = models.ForeignKey(
        "conversations.ConversationMessage",
        on_delete=models.CASCADE,
        related_name="tool_approvals",
    )
    turn_id = models.UUIDField()
    call_id = models.CharField(max_length=200)
    tool_name = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict, blank=True)
    decision = models.CharField(max_length=16, choices=Decision.choices, blank=True)
    decided_by = models.CharField(max_length=16, choices=DecidedBy.choices, blank=True)
    reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "call_id"], name="approval_one_per_call")
        ]
        indexes = [
            models.Index(fields=["conversation", "call_id"], name="approval_call"),
            # The timeout sweep's scan: undecided calls by deadline.
            models.Index(fields=["deadline"], name="approval_due", condition=Q(decision="")),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.call_id}): {self.decision or 'pending'}"

    @property
    def pending(self) -> bool:
        return not self.decision
