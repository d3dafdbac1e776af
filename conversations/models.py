"""Confab's domain models: agents, conversations, their messages, and the seed's room.

Models hold data and the rules of a single row; writes that touch several rows or
send events are services (`conversations.services`). One model calls a service:
`ChatRoom`, the origin's room, whose lifecycle hook creates its Conversation on
create. Code written for the origin (`ChatRoom.objects.create(...)`) keeps working
that way, and the conversation it gets is made by the same service every surface
uses (validation, events on commit, the changes feed), not by a second copy.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_lifecycle import BEFORE_CREATE, LifecycleModel, hook

from conversations.llm.mcp import parse_servers
from conversations.llm.prompts import template_variables


class Agent(models.Model):
    """A persona: the prompts, model and tools a conversation runs with."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    system_prompt_template = models.TextField()
    first_user_message_template = models.TextField(blank=True)
    model = models.CharField(
        max_length=100,
        blank=True,
        help_text="Model name; blank means the CONFAB_LLM_MODEL setting or the provider default.",
    )
    temperature = models.FloatField(default=1.0)
    allowed_models = models.JSONField(
        default=list,
        blank=True,
        help_text="Registry model names a conversation may switch to; empty: every active one.",
    )
    tools = models.JSONField(default=list, blank=True, help_text="Names of registered tools.")
    tools_requiring_approval = models.JSONField(
        default=list,
        blank=True,
        help_text="Names of tools (built-in or MCP) whose calls wait for the user's approval; "
        '"*": every tool.',
    )
    on_busy = models.CharField(
        max_length=16,
        choices=[("reject", "Reject"), ("enqueue", "Enqueue")],
        default="reject",
        help_text="A message sent while a turn runs, when the request does not say: refused "
        "(409 TURN_IN_PROGRESS) or queued and answered after the running turn.",
    )
    mcp_servers = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            'MCP tool servers: [{"name": "…", "url": "https://…/mcp", '
            '"headers": {"Authorization": "ENV_VARIABLE"}, "tools": ["allowed", "…"]}]; '
            "header values come from the named environment variables."
        ),
    )
    context_schema = models.JSONField(
        default=dict,
        blank=True,
        help_text='Template variables: {"name": {"default": "…", "description": "…"}}.',
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            parse_servers(self.mcp_servers)
        except ValidationError as error:
            raise ValidationError({"mcp_servers": error.messages}) from error
        names = self.tools_requiring_approval
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ValidationError(
                {"tools_requiring_approval": 'A list of tool names (or "*": every tool).'}
            )

    def variables(self) -> dict[str, Any]:
        """Every variable the agent's templates use, mapped to its default (None: required)."""
        schema = self.context_schema or {}
        names = template_variables(self.system_prompt_template) + template_variables(
            self.first_user_message_template
        )
        variables: dict[str, Any] = {}
        for name in [*names, *schema]:
            spec = schema.get(name)
            variables[name] = spec.get("default") if isinstance(spec, dict) else spec
        return variables


class TitleSource(models.TextChoices):
    """Who wrote a conversation's title (conversations/titles)."""

    NONE = "", "Nobody yet"
    USER = "user", "The user"
    AUTO = "auto", "Generated"


class Conversation(models.Model):
    """One chat thread between a user and an agent.

    `active_turn_id` is the database-held lock that allows one running turn per
    conversation across all processes; `active_turn_heartbeat_at` lets a sweeper
    find turns whose worker died.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="conversations")
    context = models.JSONField(default=dict, blank=True)
    title = models.CharField(max_length=200, blank=True)
    # Automatic titles (conversations/titles): a title the user set (or cleared) is never
    # replaced by a generated one, and a conversation gets one generation attempt.
    title_source = models.CharField(
        max_length=8, choices=TitleSource.choices, default=TitleSource.NONE, blank=True
    )
    title_attempted_at = models.DateTimeField(null=True, blank=True)
    # The user's choice (PATCH {"model", "temperature"}); blank / NULL: the agent's.
    model = models.CharField(max_length=100, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Sort key of the conversation list: the last message's time, or the
    # creation time while there is none. A real column so it can be indexed.
    activity_at = models.DateTimeField(default=timezone.now)
    message_count = models.PositiveIntegerField(default=0)
    active_turn_id = models.UUIDField(null=True, blank=True)
    active_turn_heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Projects and pins (conversations.projects): the list shows pinned ones first.
    project = models.ForeignKey(
        "conversations.Project",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
    )
    pinned = models.BooleanField(default=False)
    # The last message of the active branch (conversations/tree.py): new messages answer
    # it; NULL while the conversation is empty. A plain id, not a foreign key: it is
    # kept under the conversation's row lock with the messages' `on_path` flags.
    active_leaf_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-activity_at", "-id"], name="conv_user_activity"),
            models.Index(
                fields=["user", "-pinned", "-activity_at", "-id"], name="conv_user_pinned"
            ),
            models.Index(
                fields=["active_turn_heartbeat_at"],
                name="conv_active_turns",
                condition=Q(active_turn_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def clear(self) -> int:
        """Delete every message of this conversation (the seed's API); see services."""
        from conversations import services

        return services.clear_conversation(conversation=self)


class MessageRole(models.TextChoices):
    SYSTEM = "system", "System"
    HUMAN = "human", "Human"
    AI = "ai", "AI"
    TOOL = "tool", "Tool"


class MessageStatus(models.TextChoices):
    STREAMING = "streaming", "Streaming"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # A human message sent with on_busy "enqueue" while a turn ran: stored, answered
    # after the running turn (then `complete`), in order.
    QUEUED = "queued", "Queued"
    # An AI reply whose tool calls wait for the user's approval (conversations.approvals);
    # `complete` once every call is decided.
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"


class OnBusy(models.TextChoices):
    """What a message sent while a turn runs does: refused (409) or queued."""

    REJECT = "reject", "Reject"
    ENQUEUE = "enqueue", "Enqueue"


class ConversationMessage(models.Model):
    """One stored LangChain message, in the seed's `{"_type", "_value"}` shape.

    Messages form a tree (conversations/tree.py): `parent` is the message this one
    follows (NULL for a first message); a regenerate or an edit adds a sibling. The
    conversation's active branch is the path from a root to its `active_leaf_id`, its
    messages flagged `on_path`: every read of the history is a range of the
    `msg_active_path` index, as fast as a linear history.
    """

    id = models.BigAutoField(primary_key=True)
    # Indexed by msg_conversation_id (conversation_id, id), which also serves
    # lookups by conversation alone: a second single-column index would only
    # cost writes.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversation_messages"
    )
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    content = models.JSONField(default=dict)
    text = models.TextField(blank=True)
    # 24: "awaiting_approval" is 17 (widening a varchar is a catalog change on PostgreSQL).
    status = models.CharField(
        max_length=24, choices=MessageStatus.choices, default=MessageStatus.COMPLETE
    )
    turn_id = models.UUIDField(null=True, blank=True)
    # NULL, not "", when absent: the unique constraint must ignore messages without one.
    client_message_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    model = models.CharField(max_length=100, blank=True)
    usage = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # The tree. DO_NOTHING: messages are deleted by whole conversations (clear, delete),
    # never one by one, so no subtree is left behind and no per-row cascade is collected.
    parent = models.ForeignKey(
        "self",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # A database default too: rows written by raw SQL (COPY, INSERT ... SELECT) and the
    # migration's ADD COLUMN (a catalog change on PostgreSQL, no table rewrite) are on it.
    on_path = models.BooleanField(default=True, db_default=True)
    # Every child of this message's parent (itself included), oldest first, once it has
    # siblings; NULL for an only child. Denormalized so that no payload needs a query:
    # written under the conversation's row lock whenever a sibling is added.
    sibling_ids = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "id"], name="msg_conversation_id"),
            models.Index(
                fields=["conversation", "id"], name="msg_active_path", condition=Q(on_path=True)
            ),
            models.Index(fields=["parent", "id"], name="msg_parent"),
            models.Index(
                fields=["conversation", "id"], name="msg_roots", condition=Q(parent__isnull=True)
            ),
            models.Index(
                fields=["status"],
                name="msg_streaming",
                condition=Q(status="streaming"),
            ),
            models.Index(fields=["turn_id"], name="msg_turn"),
            models.Index(
                fields=["conversation", "id"],
                name="msg_queued",
                condition=Q(status="queued"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_message_id"],
                name="msg_unique_client_message_id",
                condition=Q(client_message_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}: {self.text[:40]}"


class ChatRoom(LifecycleModel):
    """The seed's room: creating one creates its Conversation (lifecycle hook)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_rooms"
    )
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="chat_rooms")
    context = models.JSONField(default=dict, blank=True)
    name = models.CharField(max_length=200, blank=True)
    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="chat_room", null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or f"Room {self.pk}"

    @hook(BEFORE_CREATE)
    def create_conversation(self) -> None:
        """Create the room's Conversation through the service, as the seed's room does."""
        from conversations import services

        if self.conversation_id is None:
            self.conversation = services.create_conversation(
                user=self.user, agent=self.agent, context=self.context, title=self.name
            )


# The models of the domain's areas live with their area; importing them here registers
# them with this app.
from conversations.approvals.models import ToolApproval  # noqa: E402
from conversations.feedback.models import MessageFeedback  # noqa: E402
from conversations.files.models import UserFile  # noqa: E402
from conversations.llm.registry import LanguageModel  # noqa: E402
from conversations.notifications.models import Notification  # noqa: E402
from conversations.projects.models import Project  # noqa: E402
from conversations.shares.models import Share  # noqa: E402
from conversations.sync.models import Change, SyncCounter  # noqa: E402
from conversations.usage.models import (  # noqa: E402
    QuotaReservation,
    UsageDay,
    UsageRecord,
    UserQuota,
)

__all__ = [
    "Agent",
    "Change",
    "ChatRoom",
    "Conversation",
    "ConversationMessage",
    "LanguageModel",
    "MessageFeedback",
    "MessageRole",
    "MessageStatus",
    "Notification",
    "Project",
    "QuotaReservation",
    "Share",
    "SyncCounter",
    "ToolApproval",
    "UsageDay",
    "UsageRecord",
    "UserFile",
    "UserQuota",
]
