"""Conversation writes: create, update, archive, delete, clear."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from conversations.effects import emit, write
from conversations.events import EventType, conversation_event
from conversations.llm.registry import LanguageModel
from conversations.models import Agent, Conversation, TitleSource
from conversations.projects.models import Project
from conversations.projects.selectors import get_project
from core.errors import ValidationFailed

UNSET: Any = object()
MAX_CONTEXT_VALUE_CHARS = 2_000
MAX_TITLE_CHARS = 200
MAX_TEMPERATURE = 2.0


def validate_context(*, agent: Agent, context: Any) -> dict[str, Any]:
    """Return the full context for `agent` (defaults filled in) or raise naming each bad key.

    Unknown variables and missing required ones are a 400 at creation, not a
    crash at the first turn.
    """
    if context is None:
        context = {}
    if not isinstance(context, dict):
        raise ValidationFailed.for_field("context", "invalid", "context must be a JSON object.")
    variables = agent.variables()
    fields: dict[str, list[dict[str, str]]] = {}
    for key, value in context.items():
        if key not in variables:
            fields[f"context.{key}"] = [
                {"code": "unknown_variable", "message": f"Unknown variable {key!r}."}
            ]
        elif not isinstance(value, str | int | float) or isinstance(value, bool):
            fields[f"context.{key}"] = [
                {"code": "invalid", "message": f"{key!r} must be a string or a number."}
            ]
        elif len(str(value)) > MAX_CONTEXT_VALUE_CHARS:
            fields[f"context.{key}"] = [
                {
                    "code": "too_long",
                    "message": f"{key!r} is longer than {MAX_CONTEXT_VALUE_CHARS}.",
                }
            ]
    full = {name: default for name, default in variables.items() if default is not None}
    full.update({k: v for k, v in context.items() if k in variables})
    for name in variables:
        if name not in full:
            fields[f"context.{name}"] = [
                {"code": "missing_variable", "message": f"Variable {name!r} is required."}
            ]
    if fields:
        names = ", ".join(sorted(key.removeprefix("context.") for key in fields))
        raise ValidationFailed(f"Invalid context variables: {names}.", fields=fields)
    return {name: str(value) for name, value in full.items()}


def _validate_title(title: Any) -> str:
    if not isinstance(title, str):
        raise ValidationFailed.for_field("title", "invalid", "title must be a string.")
    if len(title) > MAX_TITLE_CHARS:
        raise ValidationFailed.for_field(
            "title", "too_long", f"title is longer than {MAX_TITLE_CHARS} characters."
        )
    return title.strip()


def validate_model_choice(*, agent: Agent, model: Any) -> str:
    """A model a conversation with `agent` may run with: an active registry entry in the
    agent's `allowed_models` (any active one when that list is empty). None or "" means
    the agent's default and is returned as ""."""
    if model is None or model == "":
        return ""
    if not isinstance(model, str):
        raise ValidationFailed.for_field("model", "invalid", "model must be a string.")
    if not LanguageModel.objects.filter(name=model, is_active=True).exists():
        raise ValidationFailed.for_field(
            "model", "unknown_model", f"Unknown model {model!r} (see GET /api/v1/models/)."
        )
    allowed = agent.allowed_models or []
    if allowed and model not in allowed:
        raise ValidationFailed.for_field(
            "model", "not_allowed", f"This agent does not allow the model {model!r}."
        )
    return model


def validate_temperature(value: Any) -> float | None:
    """A sampling temperature in 0..2, or None (the agent's)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailed.for_field("temperature", "invalid", "temperature must be a number.")
    if not 0 <= value <= MAX_TEMPERATURE:
        raise ValidationFailed.for_field(
            "temperature", "out_of_range", f"temperature must be between 0 and {MAX_TEMPERATURE}."
        )
    return float(value)


def _project(user: Any, project: Any) -> Project | None:
    """The user's project from an id a client sent (None: no project); another user's
    (or a missing one) is NotFound."""
    if project is None or isinstance(project, Project):
        return project
    return get_project(user=user, project_id=project)


@write
def create_conversation(
    *,
    user: Any,
    agent: Agent | str | None,
    context: dict[str, Any] | None = None,
    title: str = "",
    project: Project | int | str | None = None,
) -> Conversation:
    """Create a conversation for `user` with `agent` (an agent or the slug a client
    sent), validating the template context. An unknown or inactive agent is a
    ValidationFailed on the field `agent`. In a `project`, the agent defaults to the
    project's default agent."""
    project = _project(user, project)
    if agent is None and project is not None and project.default_agent_id:
        agent = project.default_agent
    if agent is None:
        raise ValidationFailed.for_field("agent", "required", "agent is required.")
    if isinstance(agent, str):
        found = Agent.objects.filter(slug=agent, is_active=True).first()
        if found is None:
            raise ValidationFailed.for_field("agent", "not_found", f"Unknown agent {agent!r}.")
        agent = found
    if not agent.is_active:
        raise ValidationFailed.for_field("agent", "inactive", "This agent is not available.")
    title = _validate_title(title)
    conversation = Conversation.objects.create(
        user=user,
        agent=agent,
        context=validate_context(agent=agent, context=context),
        title=title,
        # A title given at creation is the user's: no title is generated over it.
        title_source=TitleSource.USER if title else TitleSource.NONE,
        project=project,
    )
    emit(conversation_event(EventType.CONVERSATION_CREATED, conversation), user_id=user.pk)
    return conversation


@write
def update_conversation(
    *,
    conversation: Conversation,
    title: Any = UNSET,
    context: Any = UNSET,
    archived: Any = UNSET,
    model: Any = UNSET,
    temperature: Any = UNSET,
    project: Any = UNSET,
    pinned: Any = UNSET,
) -> Conversation:
    """Change a conversation's title, context, archived state, model and/or temperature
    (null goes back to the agent's), project (an id of the owner's project, or None)
    and/or pin. A title given here is the user's: it is never replaced by an automatic
    one (conversations/titles)."""
    changed: list[str] = []
    if model is not UNSET:
        conversation.model = validate_model_choice(agent=conversation.agent, model=model)
        changed.append("model")
    if temperature is not UNSET:
        conversation.temperature = validate_temperature(temperature)
        changed.append("temperature")
    if title is not UNSET:
        conversation.title = _validate_title(title)
        # Set (or cleared) by the user: an automatic title never replaces it, even one
        # being generated right now (conversations/titles writes only where the source
        # is still empty).
        conversation.title_source = TitleSource.USER
        changed.extend(["title", "title_source"])
    if context is not UNSET:
        conversation.context = validate_context(agent=conversation.agent, context=context)
        changed.append("context")
    if archived is not UNSET:
        if not isinstance(archived, bool):
            raise ValidationFailed.for_field("archived", "invalid", "archived must be a boolean.")
        if archived != conversation.is_archived:
            conversation.archived_at = timezone.now() if archived else None
            changed.append("archived_at")
    if project is not UNSET:
        conversation.project = _project(conversation.user, project)
        changed.append("project")
    if pinned is not UNSET:
        if not isinstance(pinned, bool):
            raise ValidationFailed.for_field("pinned", "invalid", "pinned must be a boolean.")
        conversation.pinned = pinned
        changed.append("pinned")
    if changed:
        conversation.save(update_fields=[*changed, "updated_at"])
        emit(
            conversation_event(EventType.CONVERSATION_UPDATED, conversation),
            user_id=conversation.user_id,
        )
    return conversation


def set_archived(*, conversation: Conversation, archived: bool) -> Conversation:
    """Archive or unarchive a conversation."""
    return update_conversation(conversation=conversation, archived=archived)


@write
def delete_conversation(*, conversation: Conversation) -> None:
    """Delete a conversation and all its messages."""
    event = conversation_event(EventType.CONVERSATION_DELETED, conversation)
    user_id = conversation.user_id
    conversation.delete()
    emit(event, user_id=user_id)


@write
def clear_conversation(*, conversation: Conversation) -> int:
    """Delete every message of a conversation; returns how many were deleted.

    The conversation row is locked first, and a running turn's lock is taken
    away in the same transaction: the turn's later writes check that lock, so
    nothing is written into the cleared conversation and no half-cleared
    history can be seen.
    """
    # Agent joined: the conversation.updated payload names it (no lazy read).
    locked = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("agent")
        .get(pk=conversation.pk)
    )
    deleted, _ = locked.messages.all().delete()
    locked.message_count = 0
    locked.active_leaf_id = None
    locked.last_message_at = None
    locked.active_turn_id = None
    locked.active_turn_heartbeat_at = None
    locked.cancel_requested = False
    locked.save(
        update_fields=[
            "message_count",
            "active_leaf_id",
            "last_message_at",
            "active_turn_id",
            "active_turn_heartbeat_at",
            "cancel_requested",
            "updated_at",
        ]
    )
    for field in (
        "message_count",
        "active_leaf_id",
        "last_message_at",
        "active_turn_id",
        "updated_at",
    ):
        setattr(conversation, field, getattr(locked, field))
    emit(conversation_event(EventType.CONVERSATION_CLEARED, locked), user_id=locked.user_id)
    return deleted
