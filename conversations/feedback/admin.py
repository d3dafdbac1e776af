"""Feedback in the admin: every rating, filtered by rating, agent, model and date (what
an operator reviews: which agent or model gets thumbs down, and why)."""

from __future__ import annotations

from django.contrib import admin

from conversations.feedback.models import MessageFeedback


@admin.register(MessageFeedback)
class MessageFeedbackAdmin(admin.ModelAdmin):
    list_display = ["id", "rating", "short_comment", "message", "user", "agent", "updated_at"]
    list_filter = [
        "rating",
        ("message__conversation__agent", admin.RelatedOnlyFieldListFilter),
        "message__model",
        ("comment", admin.EmptyFieldListFilter),
        "updated_at",
    ]
    search_fields = ["comment", "message__text", "user__username"]
    list_select_related = ["message__conversation__agent", "user"]
    raw_id_fields = ["message", "user"]
    readonly_fields = ["created_at", "updated_at"]
    date_hierarchy = "updated_at"

    @admin.display(description="comment")
    def short_comment(self, feedback: MessageFeedback) -> str:
        return feedback.comment[:80]

    @admin.display(description="agent", ordering="message__conversation__agent__name")
    def agent(self, feedback: MessageFeedback) -> str:
        return str(feedback.message.conversation.agent)
