"""The shapes of Confab's objects, the same on every surface.

REST writes them as they are, events carry them, GraphQL types are built from
them: a field added here reaches every client at once, and no surface can drift
(tests/api/test_shared_shapes.py checks each shape on every surface).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conversations.files.attachments import attachments_of
from conversations.llm.providers import conversation_model_name, resolve_model_name
from conversations.tree import sibling_payload
from core.timestamps import iso_timestamp

if TYPE_CHECKING:
    from conversations.feedback.models import MessageFeedback
    from conversations.history_pages import MessageRow
    from conversations.models import (
        Agent,
        Conversation,
        ConversationMessage,
        Project,
        ToolApproval,
    )
    from conversations.sync.selectors import FeedChange


# `message_payload`'s feedback when the caller passes none: the message's attached one.
FROM_MESSAGE: Any = object()


def feedback_payload(feedback: MessageFeedback) -> dict[str, Any]:
    """The owner's rating of an AI reply, as the message payload carries it."""
    return {
        "rating": feedback.rating,
        "comment": feedback.comment,
        "updated_at": iso_timestamp(feedback.updated_at),
    }


def message_payload(
    message: ConversationMessage | MessageRow, feedback: Any = FROM_MESSAGE
) -> dict[str, Any]:
    """The message shape of every surface (REST, events, SSE, websocket). A `MessageRow`
    (a history page read for JSON output) gives the same shape, its JSON columns as text.
    `attachments` are the files the message references, read from its content alone
    (conversations/files/attachments.py: no query, no bytes).

    `feedback` is the owner's rating (`feedback_payload`, or None); by default the one a
    selector attached to the message (`feedback.selectors.attach_feedback`), else None:
    a new or streaming reply has none."""
    if feedback is FROM_MESSAGE:
        feedback = getattr(message, "user_feedback", None)
    return {
        "id": message.id,
        "conversation": message.conversation_id,
        "role": message.role,
        "text": message.text,
        "content": message.content,
        "attachments": attachments_of(message.content),
        "status": message.status,
        "turn_id": str(message.turn_id) if message.turn_id else None,
        "client_message_id": message.client_message_id,
        "model": message.model,
        "usage": message.usage,
        "error": message.error,
        "created_at": iso_timestamp(message.created_at),
        "updated_at": iso_timestamp(message.updated_at),
        "feedback": feedback,
        "parent_id": message.parent_id,
        "siblings": sibling_payload(message),
    }


def tool_approval_payload(approval: ToolApproval) -> dict[str, Any]:
    """A tool call that waits (or waited) for the user's approval, and its decision
    (`decision` "" while pending; `decided_by` "user", "timeout" or "cancel")."""
    return {
        "call_id": approval.call_id,
        "name": approval.tool_name,
        "arguments": approval.arguments,
        "message_id": approval.message_id,
        "decision": approval.decision or None,
        "decided_by": approval.decided_by or None,
        "reason": approval.reason,
        "decided_at": iso_timestamp(approval.decided_at),
        "deadline": iso_timestamp(approval.deadline),
    }


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    """The conversation fields a live list needs (no messages)."""
    return {
        "id": conversation.id,
        "title": conversation.title,
        "agent": conversation.agent.slug if conversation.agent_id else None,
        "context": conversation.context,
        # The model and temperature its turns use: its own choice, else its agent's.
        "model": conversation_model_name(conversation),
        # Its own choice only: null means the agent's, which stays private like its prompts.
        "temperature": conversation.temperature,
        "archived": conversation.archived_at is not None,
        "archived_at": iso_timestamp(conversation.archived_at),
        "last_message_at": iso_timestamp(conversation.last_message_at),
        "message_count": conversation.message_count,
        "active_turn_id": str(conversation.active_turn_id) if conversation.active_turn_id else None,
        "project": conversation.project_id,
        "pinned": conversation.pinned,
        # The last message of the active branch (null: no message yet).
        "active_leaf_id": conversation.active_leaf_id,
        "created_at": iso_timestamp(conversation.created_at),
        "updated_at": iso_timestamp(conversation.updated_at),
    }


def project_payload(project: Project) -> dict[str, Any]:
    """A project: its name, the instructions its conversations' turns get, and the agent
    a conversation created in it starts with when the client names none."""
    return {
        "id": project.pk,
        "name": project.name,
        "instructions": project.instructions,
        "default_agent": project.default_agent.slug if project.default_agent_id else None,
        "created_at": iso_timestamp(project.created_at),
        "updated_at": iso_timestamp(project.updated_at),
    }


def agent_payload(agent: Agent) -> dict[str, Any]:
    """An agent as clients see it: never its prompts. `model` is the model its turns
    use (the server default when the agent names none)."""
    schema = agent.context_schema if isinstance(agent.context_schema, dict) else {}
    variables = []
    for name, default in agent.variables().items():
        spec = schema.get(name)
        description = spec.get("description", "") if isinstance(spec, dict) else ""
        variables.append(
            {
                "name": name,
                "default": None if default is None else str(default),
                "description": str(description or ""),
                "required": default is None,
            }
        )
    return {
        "slug": agent.slug,
        "name": agent.name,
        "description": agent.description,
        "context_variables": variables,
        "model": resolve_model_name(agent.model),
        "allowed_models": [str(name) for name in agent.allowed_models or []],
        "tools": [str(tool) for tool in agent.tools or []],
    }


def change_payload(change: FeedChange) -> dict[str, Any]:
    """One change of the feed: `{"type", …}` with the object as it is now (upserts) or
    the ids of what is gone (deletes, clears)."""
    if change.message is not None:
        return {"type": change.kind, "message": message_payload(change.message)}
    if change.conversation is not None:
        return {"type": change.kind, "conversation": conversation_payload(change.conversation)}
    if change.message_id is not None:
        return {
            "type": change.kind,
            "id": change.message_id,
            "conversation_id": change.conversation_id,
        }
    return {"type": change.kind, "id": change.conversation_id}
