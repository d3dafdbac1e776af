"""Share links in the admin: who shared which conversation, up to which message."""

from __future__ import annotations

from django.contrib import admin

from conversations.shares.models import Share


@admin.register(Share)
class ShareAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "user", "up_to_message_id", "created_at"]
    raw_id_fields = ["conversation", "user"]
    readonly_fields = ["token", "up_to_message_id", "created_at"]
    search_fields = ["user__username", "conversation__title"]
    date_hierarchy = "created_at"
