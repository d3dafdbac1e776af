"""Project writes: create, change, delete. Moving a conversation into or out of a project
is `services.update_conversation(project=…)`."""

from __future__ import annotations

from typing import Any

from conversations.effects import emit, write
from conversations.events import EventType, conversation_event
from conversations.models import Agent, Conversation
from conversations.projects.models import Project
from core.errors import ValidationFailed

UNSET: Any = object()
MAX_NAME_CHARS = 200
MAX_INSTRUCTIONS_CHARS = 8_000


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.for_field("name", "invalid", "name must be a non-empty string.")
    if len(value) > MAX_NAME_CHARS:
        raise ValidationFailed.for_field(
            "name", "too_long", f"name is longer than {MAX_NAME_CHARS} characters."
        )
    return value.strip()


def _instructions(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed.for_field(
            "instructions", "invalid", "instructions must be a string."
        )
    if len(value) > MAX_INSTRUCTIONS_CHARS:
        raise ValidationFailed.for_field(
            "instructions",
            "too_long",
            f"instructions are longer than {MAX_INSTRUCTIONS_CHARS} characters.",
        )
    return value.strip()


def _agent(value: Any) -> Agent | None:
    """An active agent from its slug (None clears the default)."""
    if value is None or value == "":
        return None
    agent = (
        Agent.objects.filter(slug=value, is_active=True).first() if isinstance(value, str) else None
    )
    if agent is None:
        raise ValidationFailed.for_field("default_agent", "not_found", f"Unknown agent {value!r}.")
    return agent


@write
def create_project(
    *, user: Any, name: Any, instructions: Any = "", default_agent: Any = None
) -> Project:
    """A new project of `user`; `default_agent` is an agent slug or None."""
    return Project.objects.create(
        user=user,
        name=_name(name),
        instructions=_instructions(instructions),
        default_agent=_agent(default_agent),
    )


@write
def update_project(
    *,
    project: Project,
    name: Any = UNSET,
    instructions: Any = UNSET,
    default_agent: Any = UNSET,
) -> Project:
    """Change the fields given. New instructions apply from the next turn of each of the
    project's conversations (a turn reads them when it starts)."""
    changed = []
    if name is not UNSET:
        project.name = _name(name)
        changed.append("name")
    if instructions is not UNSET:
        project.instructions = _instructions(instructions)
        changed.append("instructions")
    if default_agent is not UNSET:
        project.default_agent = _agent(default_agent)
        changed.append("default_agent")
    if changed:
        project.save(update_fields=[*changed, "updated_at"])
    return project


@write
def delete_project(*, project: Project) -> None:
    """Delete a project; its conversations stay, outside any project (each announced as
    `conversation.updated`, so lists and the changes feed see the move)."""
    moved = list(
        Conversation.objects.select_for_update()
        .filter(project_id=project.pk)
        .select_related("agent")
        .order_by("id")
    )
    Conversation.objects.filter(project_id=project.pk).update(project=None)
    project.delete()
    for conversation in moved:
        conversation.project_id = None
        emit(
            conversation_event(EventType.CONVERSATION_UPDATED, conversation),
            user_id=conversation.user_id,
        )
