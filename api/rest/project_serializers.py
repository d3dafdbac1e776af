"""Request and response shapes of `/api/v1/projects/` (the project shape is
`conversations.payloads.project_payload`)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.rest.serializers import InputSerializer, OutputSerializer, StrictCharField
from conversations.payloads import project_payload
from conversations.projects.services import MAX_NAME_CHARS


class ProjectSerializer(OutputSerializer):
    """A project: a folder of conversations whose turns get its instructions."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    instructions = serializers.CharField(
        read_only=True,
        allow_blank=True,
        help_text="Added to the system prompt of every turn of its conversations.",
    )
    default_agent = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Slug of the agent a conversation created in it starts with by default.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, project: Any) -> dict[str, Any]:
        return project_payload(project)


class ProjectPageSerializer(OutputSerializer):
    """A page of the user's projects, oldest first."""

    results = ProjectSerializer(many=True, read_only=True)
    next_cursor = serializers.CharField(
        read_only=True, allow_null=True, help_text="Pass as `cursor` for the next page."
    )
    has_more = serializers.BooleanField(read_only=True)


class ProjectCreateSerializer(InputSerializer):
    """A new project."""

    name = StrictCharField(max_length=MAX_NAME_CHARS)
    instructions = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    default_agent = StrictCharField(
        max_length=64, required=False, allow_null=True, help_text="An agent's slug."
    )


class ProjectUpdateSerializer(InputSerializer):
    """Only the fields given are changed."""

    name = StrictCharField(max_length=MAX_NAME_CHARS, required=False)
    instructions = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    default_agent = StrictCharField(
        max_length=64, required=False, allow_null=True, help_text="An agent's slug; null: none."
    )
