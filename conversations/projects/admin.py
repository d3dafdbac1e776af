"""Projects in the admin."""

from __future__ import annotations

from django.contrib import admin

from conversations.projects.models import Project


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "user", "default_agent", "updated_at"]
    list_filter = ["default_agent", "created_at"]
    search_fields = ["name", "instructions", "user__username"]
    raw_id_fields = ["user"]
