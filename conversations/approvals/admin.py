"""Tool approvals in the admin: which calls waited, for what, and who decided (read-only:
decisions go through the services, which resume the turn)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from conversations.approvals.models import ToolApproval


@admin.register(ToolApproval)
class ToolApprovalAdmin(admin.ModelAdmin):
    list_display = ["id", "tool_name", "call_id", "decision", "decided_by", "user", "created_at"]
    list_filter = ["decision", "decided_by", "tool_name", "created_at"]
    search_fields = ["call_id", "tool_name", "user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["conversation", "message", "user"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
