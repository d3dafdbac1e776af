"""A project groups a user's conversations and adds its instructions to their turns
(registered by `conversations.models`)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Project(models.Model):
    """A folder of conversations with instructions appended to their system prompt, and
    the agent new conversations in it start with when the client names none."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="projects"
    )
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    default_agent = models.ForeignKey(
        "conversations.Agent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user", "name", "id"], name="project_user_name")]

    def __str__(self) -> str:
        return self.name
